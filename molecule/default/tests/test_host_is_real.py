"""The test host is a real Debian host: systemd runs it, services restart, the firewall works."""


def test_systemd_is_pid_1(host):
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"


def test_system_is_running(host):
    state = host.run("systemctl is-system-running --wait").stdout.strip()
    assert state == "running", host.run("systemctl --failed --no-pager").stdout


def test_service_is_enabled_and_running(host):
    nginx = host.service("nginx")
    assert nginx.is_enabled
    assert nginx.is_running
    assert host.socket("tcp://0.0.0.0:80").is_listening


def test_service_restarts_with_a_new_process(host):
    def main_pid():
        return int(host.check_output("systemctl show -p MainPID --value nginx"))

    before = main_pid()
    host.run_test("systemctl restart nginx")
    after = main_pid()
    assert before != after > 0
    assert host.service("nginx").is_running


def test_nftables_holds_the_rules(host):
    ruleset = host.check_output("nft list ruleset")
    assert "table inet molecule_probe" in ruleset
    assert "192.0.2.1" in ruleset
    host.run_test("nft add element inet molecule_probe probe_blocked '{ 192.0.2.3 }'")
    assert "192.0.2.3" in host.check_output("nft list set inet molecule_probe probe_blocked")


def test_iptables_holds_the_rule(host):
    rules = host.check_output("iptables -S INPUT")
    assert "-s 192.0.2.2/32" in rules and "-j DROP" in rules
