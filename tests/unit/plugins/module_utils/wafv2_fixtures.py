# -*- coding: utf-8 -*-
# Copyright: floodguard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""WAFv2 test helpers: a botocore client with a Stubber, GetIPSet answers, and moto in server mode."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import uuid

import boto3
import botocore.session
from botocore.stub import Stubber
from moto.server import ThreadedMotoServer

SCOPE = "REGIONAL"
REGION = "eu-west-1"


def stubbed_client():
    client = botocore.session.get_session().create_client(
        "wafv2", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    return client, Stubber(client)


def set_id(name):
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, name))


def get_answer(name, addresses, version="IPV4", token="token-1"):
    return {
        "IPSet": {"Name": name, "Id": set_id(name), "IPAddressVersion": version, "Addresses": list(addresses),
                  "ARN": "arn:aws:wafv2:%s:123456789012:regional/ipset/%s/%s" % (REGION, name, set_id(name))},
        "LockToken": token,
    }


def get_params(name):
    return {"Name": name, "Scope": SCOPE, "Id": set_id(name)}


def ipv4_block(first, count):
    start = ipaddress.ip_address(first)
    return ["%s/32" % (start + offset) for offset in range(count)]


def aws_error(stubber, operation, code, message="stubbed"):
    stubber.add_client_error(operation, service_error_code=code, service_message=message, http_status_code=400)


@contextlib.contextmanager
def moto_server():
    """moto in server mode on a free loopback port (real HTTP, real LockToken checks); yields its URL."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        yield "http://%s:%d" % server.get_host_and_port()
    finally:
        server.stop()


def moto_client(endpoint):
    """A wafv2 client of the moto server at endpoint (fake credentials: nothing leaves loopback)."""
    return boto3.client("wafv2", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key="testing")
