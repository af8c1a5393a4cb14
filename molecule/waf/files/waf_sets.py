# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scenario's IP sets and web ACL in moto (run on the moto container with moto's own boto3).

waf_sets.py REGION ensure NAME:VERSION ...   create the sets that do not exist (as AWS would still have
                                             them), and the web ACL fg-edge whose one rule blocks an
                                             address found in any of them (an OR of IP set references,
                                             as examples/ec2/waf.yml builds it)
waf_sets.py REGION show                      {name: [addresses]} of every REGIONAL set, as JSON
waf_sets.py REGION blocked                   [addresses] the web ACL's rule blocks: the union of the sets
                                             its statement references, as JSON
"""

import json
import sys

import boto3

CLIENT = boto3.client("wafv2", endpoint_url="http://127.0.0.1:5000", region_name=sys.argv[1],
                      aws_access_key_id="testing", aws_secret_access_key="testing")
SCOPE = "REGIONAL"
ACL = "fg-edge"


def existing():
    return {summary["Name"]: summary for summary in CLIENT.list_ip_sets(Scope=SCOPE, Limit=100)["IPSets"]}


def addresses(summary):
    return CLIENT.get_ip_set(Name=summary["Name"], Scope=SCOPE, Id=summary["Id"])["IPSet"]["Addresses"]


def visibility(name):
    return {"SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": False, "MetricName": name}


def ensure(specs):
    found = existing()
    created = []
    for spec in specs:
        name, version = spec.split(":")
        if name not in found:
            found[name] = CLIENT.create_ip_set(Name=name, Scope=SCOPE, IPAddressVersion=version, Addresses=[])["Summary"]
            created.append(name)
    if not any(acl["Name"] == ACL for acl in CLIENT.list_web_acls(Scope=SCOPE, Limit=100)["WebACLs"]):
        references = [{"IPSetReferenceStatement": {"ARN": found[spec.split(":")[0]]["ARN"]}} for spec in specs]
        CLIENT.create_web_acl(Name=ACL, Scope=SCOPE, DefaultAction={"Allow": {}}, VisibilityConfig=visibility(ACL),
                              Rules=[{"Name": "floodguard-banned", "Priority": 0, "Action": {"Block": {}},
                                      "VisibilityConfig": visibility("floodguard-banned"),
                                      "Statement": {"OrStatement": {"Statements": references}}}])
        created.append(ACL)
    return {"created": created}


def blocked():
    summary = next(acl for acl in CLIENT.list_web_acls(Scope=SCOPE, Limit=100)["WebACLs"] if acl["Name"] == ACL)
    rule = CLIENT.get_web_acl(Name=ACL, Scope=SCOPE, Id=summary["Id"])["WebACL"]["Rules"][0]
    arns = [item["IPSetReferenceStatement"]["ARN"] for item in rule["Statement"]["OrStatement"]["Statements"]]
    by_arn = {summary["ARN"]: summary for summary in existing().values()}
    return sorted(set(address for arn in arns for address in addresses(by_arn[arn])))


def main(command, specs):
    if command == "ensure":
        print(json.dumps(ensure(specs)))
    elif command == "show":
        print(json.dumps({name: sorted(addresses(summary)) for name, summary in existing().items()}))
    elif command == "blocked":
        print(json.dumps(blocked()))
    else:
        sys.exit("usage: waf_sets.py REGION ensure NAME:VERSION ... | REGION show | REGION blocked")


if __name__ == "__main__":
    main(sys.argv[2], sys.argv[3:])
