# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scenario's IP sets in moto (run on the moto container with moto's own boto3).

waf_sets.py ensure NAME:VERSION ...   create the sets that do not exist (as AWS would still have them)
waf_sets.py show                      {name: [addresses]} of every REGIONAL set, as JSON
"""

import json
import sys

import boto3

CLIENT = boto3.client("wafv2", endpoint_url="http://127.0.0.1:5000", region_name=sys.argv[1],
                      aws_access_key_id="testing", aws_secret_access_key="testing")


def existing():
    return {summary["Name"]: summary["Id"] for summary in CLIENT.list_ip_sets(Scope="REGIONAL", Limit=100)["IPSets"]}


def main(command, specs):
    found = existing()
    if command == "ensure":
        created = []
        for spec in specs:
            name, version = spec.split(":")
            if name not in found:
                CLIENT.create_ip_set(Name=name, Scope="REGIONAL", IPAddressVersion=version, Addresses=[])
                created.append(name)
        print(json.dumps({"created": created}))
    elif command == "show":
        print(json.dumps({name: sorted(CLIENT.get_ip_set(Name=name, Scope="REGIONAL", Id=set_id)["IPSet"]["Addresses"])
                          for name, set_id in found.items()}))
    else:
        sys.exit("usage: waf_sets.py REGION ensure NAME:VERSION ... | REGION show")


if __name__ == "__main__":
    main(sys.argv[2], sys.argv[3:])
