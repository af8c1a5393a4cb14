"""Stand-in for pip's get-pip.py, whose download host is unreachable from these machines.

ansible-test runs this file (copied to ~/.ansible/test/cache/get_pip_<version>.py) inside each new
sanity virtualenv with the pip requirement and options it wants. We bootstrap pip from the
interpreter's own ensurepip, then let that pip install what was asked for from the package index.
"""

import subprocess
import sys

# Options that get-pip.py understands but `pip install` does not.
GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}

requested = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
subprocess.check_call([sys.executable, "-m", "pip", "install", *requested])
