-- floodguard.shield.nginx_ratelimit: bans inside NGINX, in one lua_shared_dict shared by every worker.
-- fail2ban's action floodguard_nginx.py sends batches over a root-only unix socket (manage()); every
-- request is checked against the dict on $binary_remote_addr, after real_ip (check()). No reload per ban.
--
-- Keys of the dict (a "key" below is one byte of prefix length followed by the masked binary address):
--   "c" .. key              number of jails banning this address or network (the request check reads these)
--   "j" .. jail .. "\0" .. key   true: this jail bans it (so that one jail's unban keeps another jail's ban)
--   "p" .. family .. length  number of network bans of this family (4, 6) and prefix length
--   "n" .. jail             number of bans of this jail
--   "gen"                   bumped when the set of prefix lengths in use changes; workers cache that set
--   "loaded"                set once the state files were read into the dict (survives a reload)
local bit = require("bit")
local band, lshift = bit.band, bit.lshift
local byte, char, sub, rep = string.byte, string.char, string.sub, string.rep

local _M = {}

local DICT = "floodguard_bans"
local LOCK = "lock"

local prefix_cache = { gen = -1, [4] = {}, [6] = {} }

local function family_of(length)
  return length == 4 and 4 or 6
end

-- The binary address masked to its first `bits` bits, with the prefix length in front.
local function masked(bin, bits)
  local full = math.floor(bits / 8)
  local rest = bits % 8
  local out = sub(bin, 1, full)
  if rest > 0 then
    out = out .. char(band(byte(bin, full + 1), band(lshift(0xff, 8 - rest), 0xff)))
    full = full + 1
  end
  return char(bits) .. out .. rep("\0", #bin - full)
end
_M.masked = masked

-- "c0a80000/16" (hex of the packed network, prefix length) -> key, family, bits; nil if malformed.
local function parse(element)
  local hex, bits = element:match("^(%x+)/(%d+)$")
  if not hex or (#hex ~= 8 and #hex ~= 32) then
    return nil
  end
  bits = tonumber(bits)
  local size = #hex / 2
  if bits > size * 8 then
    return nil
  end
  local bin = hex:gsub("%x%x", function(pair) return char(tonumber(pair, 16)) end)
  return masked(bin, bits), family_of(size), bits, size
end

local function hex_of(key)
  local bits = byte(key, 1)
  return (sub(key, 2):gsub(".", function(c) return string.format("%02x", byte(c)) end)) .. "/" .. bits
end

local function is_network(bits, size)
  return bits < size * 8
end

-- Add one jail's ban; returns nil or an error ("no memory": the dict is full, nothing is evicted).
local function add(dict, jail, element)
  local key, family, bits, size = parse(element)
  if not key then
    return "malformed element " .. element
  end
  local member = "j" .. jail .. "\0" .. key
  if dict:get(member) then
    return nil
  end
  local ok, err = dict:safe_set(member, true)
  if not ok then
    return err
  end
  if dict:get("n" .. jail) then
    dict:incr("n" .. jail, 1)
  else
    dict:safe_set("n" .. jail, 1)
  end
  local count = "c" .. key
  if dict:get(count) then
    dict:incr(count, 1)
  else
    ok, err = dict:safe_set(count, 1)
    if not ok then
      dict:delete(member)
      return err
    end
  end
  if is_network(bits, size) then
    local prefix = "p" .. family .. bits
    if dict:get(prefix) then
      dict:incr(prefix, 1)
    else
      dict:safe_set(prefix, 1)
      dict:incr("gen", 1, 0)
    end
  end
  return nil
end

local function remove_key(dict, jail, key)
  local member = "j" .. jail .. "\0" .. key
  if not dict:get(member) then
    return
  end
  dict:delete(member)
  dict:incr("n" .. jail, -1)
  local left = dict:incr("c" .. key, -1)
  if left and left <= 0 then
    dict:delete("c" .. key)
  end
  local bits, size = byte(key, 1), #key - 1
  if is_network(bits, size) then
    local prefix = "p" .. family_of(size) .. bits
    left = dict:incr(prefix, -1)
    if left and left <= 0 then
      dict:delete(prefix)
      dict:incr("gen", 1, 0)
    end
  end
end

local function remove(dict, jail, element)
  local key = parse(element)
  if not key then
    return "malformed element " .. element
  end
  remove_key(dict, jail, key)
  return nil
end

-- The keys of one jail's bans.
local function jail_keys(dict, jail)
  local head = "j" .. jail .. "\0"
  local keys = {}
  for _, member in ipairs(dict:get_keys(0)) do
    if sub(member, 1, #head) == head then
      keys[#keys + 1] = sub(member, #head + 1)
    end
  end
  return keys
end

local function apply(dict, jail, operation, body)
  local failed, first_error = 0, nil
  if operation == "flush" then
    for _, key in ipairs(jail_keys(dict, jail)) do
      remove_key(dict, jail, key)
    end
    return 0, nil
  end
  local change = operation == "add" and add or remove
  for element in (body or ""):gmatch("[^\n]+") do
    local err = change(dict, jail, element)
    if err then
      failed = failed + 1
      first_error = first_error or err
    end
  end
  return failed, first_error
end

-- init_by_lua: after a restart the dict is empty; load every jail's state file (<dir>/<jail>.bans,
-- rewritten by the fail2ban action). After a reload (HUP) the dict kept its bans and "loaded" is set.
function _M.load(state_dir)
  local dict = ngx.shared[DICT]
  if dict:get("loaded") then
    return
  end
  -- The role checks that state_dir is an absolute path without quotes or spaces.
  local listing = io.popen("ls -1 '" .. state_dir .. "' 2>/dev/null")
  if listing then
    for name in listing:lines() do
      local jail = name:match("^(.+)%.bans$")
      local file = jail and io.open(state_dir .. "/" .. name, "r")
      if file then
        local failed, err = apply(dict, jail, "add", file:read("*a"))
        file:close()
        if failed > 0 then
          ngx.log(ngx.ERR, "floodguard: ", failed, " bans of jail ", jail, " not loaded: ", err)
        end
        -- The heal after a restart, or a reload that got a new (empty) dict: said once, with its cause.
        -- ERR: Debian's nginx.conf logs from level error at this phase.
        ngx.log(ngx.ERR, "floodguard: the ban list was empty (NGINX started, or reloaded with a new ban dictionary): ",
                dict:get("n" .. jail) or 0, " bans of jail ", jail, " loaded from ", state_dir, "/", name)
      end
    end
    listing:close()
  end
  dict:set("loaded", true)
end

local function refresh_prefixes(dict, gen)
  for _, family in ipairs({ 4, 6 }) do
    local lengths = {}
    for bits = 0, (family == 4 and 32 or 128) - 1 do
      if dict:get("p" .. family .. bits) then
        lengths[#lengths + 1] = bits
      end
    end
    prefix_cache[family] = lengths
  end
  prefix_cache.gen = gen
end

-- Every request: is the client (after real_ip) banned? The allowlist ($floodguard_ratelimit_exempt)
-- passes first, whatever was banned.
function _M.check(status)
  local bin = ngx.var.binary_remote_addr
  local size = bin and #bin or 0
  if size ~= 4 and size ~= 16 then
    return
  end
  if ngx.var.floodguard_ratelimit_exempt == "1" then
    return
  end
  local dict = ngx.shared[DICT]
  if dict:get("c" .. char(size * 8) .. bin) then
    return ngx.exit(status)
  end
  local gen = dict:get("gen") or 0
  if gen ~= prefix_cache.gen then
    refresh_prefixes(dict, gen)
  end
  for _, bits in ipairs(prefix_cache[family_of(size)]) do
    if dict:get("c" .. masked(bin, bits)) then
      return ngx.exit(status)
    end
  end
end

-- The management server (unix socket only): POST /add, /remove, /flush ?jail=NAME with one element
-- per line; GET /list, /count ?jail=NAME; GET /stats (the dict's capacity and free bytes). Changes run under one lock in the dict, so
-- that two workers never interleave their counts.
function _M.manage()
  if sub(ngx.var.server_addr or "", 1, 5) ~= "unix:" then
    return ngx.exit(ngx.HTTP_FORBIDDEN)
  end
  local operation = ngx.var.uri:match("^/(%a+)$")
  local jail = ngx.var.arg_jail
  if not jail or not jail:match("^[%w_.-]+$") then
    ngx.status = ngx.HTTP_BAD_REQUEST
    ngx.say("jail=NAME is required (letters, digits, '_', '.', '-')")
    return ngx.exit(ngx.HTTP_BAD_REQUEST)
  end
  local dict = ngx.shared[DICT]
  if operation == "count" then
    ngx.say(dict:get("n" .. jail) or 0)
    return
  end
  if operation == "stats" then
    ngx.say("capacity ", dict:capacity(), " free ", dict:free_space())
    return
  end
  if operation == "list" then
    for _, key in ipairs(jail_keys(dict, jail)) do
      ngx.say(hex_of(key))
    end
    return
  end
  if operation ~= "add" and operation ~= "remove" and operation ~= "flush" then
    return ngx.exit(ngx.HTTP_NOT_FOUND)
  end
  if ngx.req.get_method() ~= "POST" then
    return ngx.exit(ngx.HTTP_NOT_ALLOWED)
  end
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body and ngx.req.get_body_file() then
    local file = io.open(ngx.req.get_body_file(), "r")
    body = file:read("*a")
    file:close()
  end
  local waited = 0
  while not dict:add(LOCK, true, 5) do
    ngx.sleep(0.001)
    waited = waited + 1
    if waited > 5000 then
      return ngx.exit(ngx.HTTP_SERVICE_UNAVAILABLE)
    end
  end
  local ok, failed, err = pcall(apply, dict, jail, operation, body)
  dict:delete(LOCK)
  if not ok then
    ngx.status = ngx.HTTP_INTERNAL_SERVER_ERROR
    ngx.say("error: ", failed)
    return
  end
  if failed > 0 then
    -- 507 Insufficient Storage when the dict is full: the action names nginx_ratelimit_ban_dict_size.
    ngx.status = (err == "no memory") and 507 or ngx.HTTP_BAD_REQUEST
    ngx.say("failed ", failed, ": ", err)
    return
  end
  ngx.say("ok ", dict:get("n" .. jail) or 0)
end

return _M
