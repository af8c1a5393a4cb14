# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bench-only fail2ban Python action (system "floodguard-fast" of tools/bench/settings.py; copied to the
test host's /etc/fail2ban/action.d/ by tools/bench/host.py, never installed by the collection).

fail2ban's actions thread looks for the filter's new tickets in Utils.wait_for, whose sleeps start at
Utils.DEFAULT_SLEEP_INTERVAL (0.2 s) whatever the timeout, so a ticket waits up to 0.2 s before it is
banned. This action only lowers that interval for the whole fail2ban process, to show what the
attack-to-drop latency would be without the wait; it bans nothing itself.
"""

from fail2ban.server.action import ActionBase
from fail2ban.server.utils import Utils


class BenchFastWaits(ActionBase):
    def __init__(self, jail, name, interval="0.02"):
        super(BenchFastWaits, self).__init__(jail, name)
        Utils.DEFAULT_SLEEP_INTERVAL = float(interval)

    def ban(self, aInfo):  # pylint: disable=invalid-name  # fail2ban's name
        pass

    def unban(self, aInfo):  # pylint: disable=invalid-name
        pass


Action = BenchFastWaits
