"""``paxon certs``: make a cluster's CA and its node and client certificates,
add one later, or print what a certificate says (``paxon.security.certs``)."""

from __future__ import annotations

import argparse
import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from paxon.cli_common import UsageError, positive_int, print_json, reporting_errors

if TYPE_CHECKING:
    from paxon.security.certs import ClusterCertPaths

_Subcommands: TypeAlias = "argparse._SubParsersAction[Any]"


def add_certs_command(commands: _Subcommands) -> None:
    certs = commands.add_parser(
        "certs",
        help="make and inspect the cluster's TLS certificates",
        description=(
            "Make a CA and certificates for a cluster's nodes and clients (init), add "
            "one later (add-node, add-client), or print what a certificate says (show)."
        ),
    )
    actions = certs.add_subparsers(dest="certs_command", parser_class=type(certs), metavar="ACTION")
    init = actions.add_parser("init", help="make a new CA and node and client certificates")
    init.add_argument("--cluster-id", default="paxon", metavar="NAME", help="(paxon)")
    init.add_argument(
        "--nodes", type=_node_id_list, required=True, metavar="ID,...", help="node ids"
    )
    init.add_argument("--clients", type=_name_list, default=[], metavar="NAME,...")
    init.add_argument("--out", default="./paxon-certs", metavar="DIR", help="(./paxon-certs)")
    for parser in (init, actions.add_parser("add-node", help="add a node certificate")):
        if parser is not init:
            parser.add_argument("node_id", type=positive_int, metavar="ID")
        parser.add_argument(
            "--hosts",
            type=_name_list,
            default=[],
            metavar="HOST,...",
            help="DNS names or IP addresses the node certificates also name "
            "(always: localhost, 127.0.0.1, ::1)",
        )
    add_client = actions.add_parser("add-client", help="add a client certificate")
    add_client.add_argument("name", metavar="NAME")
    for parser in (actions.choices["add-node"], add_client):
        parser.add_argument("--dir", default="./paxon-certs", metavar="DIR", help="the CA's dir")
    for parser in (init, actions.choices["add-node"], add_client):
        parser.add_argument(
            "--days", type=positive_int, default=730, metavar="N", help="validity (730)"
        )
        parser.add_argument("--force", action="store_true", help="replace existing files")
    show = actions.add_parser("show", help="print a certificate's identity, names and expiry")
    show.add_argument("file", metavar="FILE")
    show.add_argument("--ca", metavar="FILE", help="also check it is signed by this CA")
    show.add_argument("--json", action="store_true", help="print one JSON object per certificate")


def run_certs(args: argparse.Namespace) -> int:
    from paxon.security import certs

    def body() -> int:
        match args.certs_command:
            case "init":
                written = certs.write_cluster_certs(
                    args.out,
                    args.cluster_id,
                    args.nodes,
                    hosts=args.hosts,
                    clients=args.clients,
                    days=args.days,
                    force=args.force,
                )
                _print_cluster_certs(written)
            case "add-node":
                paths = certs.issue_node_cert(
                    args.dir, args.node_id, hosts=args.hosts, days=args.days, force=args.force
                )
                print(f"node {args.node_id}	{paths.cert}	{paths.key}")
            case "add-client":
                paths = certs.issue_client_cert(
                    args.dir, args.name, days=args.days, force=args.force
                )
                print(f"client {args.name}	{paths.cert}	{paths.key}")
            case "show":
                return _show_certs(args)
            case _:
                raise UsageError("paxon certs: choose init, add-node, add-client or show")
        return 0

    return reporting_errors(f"certs {args.certs_command or ''}".strip(), body)


def _print_cluster_certs(written: ClusterCertPaths) -> None:
    ca = written.ca
    print(f"CA for cluster {written.cluster_id!r}	{ca.cert}	{ca.key} (keep it private)")
    for node_id, paths in written.nodes.items():
        print(f"node {node_id}	{paths.cert}	{paths.key}")
    for name, paths in written.clients.items():
        print(f"client {name}	{paths.cert}	{paths.key}")


def _show_certs(args: argparse.Namespace) -> int:
    from paxon.security import certs

    infos = certs.read_certificate_infos(args.file)
    signed = None if args.ca is None else certs.is_issued_by(args.file, args.ca)
    for info in infos:
        if args.json:
            fields = {"file": args.file, **info.to_json()}
            if signed is not None:
                fields["signed_by_ca"] = signed
            print_json(fields)
            continue
        identity = info.identity
        names = [*info.dns_names, *info.ip_addresses, *info.uris]
        lines = [
            ("identity", "none" if identity is None else identity.uri),
            ("subject", info.subject),
            ("issuer", info.issuer),
            ("names", ", ".join(names) or "none"),
            ("usages", ", ".join(info.usages) or "any"),
            ("ca", "yes" if info.is_ca else "no"),
            ("not before", info.not_before.isoformat()),
            ("not after", info.not_after.isoformat() + _expiry_note(info.not_after)),
        ]
        if signed is not None:
            lines.append(("signed by", f"{args.ca}: {'yes' if signed else 'NO'}"))
        print("\n".join(f"{title:<11}{value}" for title, value in lines))
    return 1 if signed is False else 0


def _expiry_note(not_after: datetime.datetime) -> str:
    left = not_after - datetime.datetime.now(datetime.UTC)
    return " (EXPIRED)" if left.total_seconds() <= 0 else f" ({left.days} days left)"


def _node_id_list(text: str) -> list[int]:
    return [positive_int(part) for part in _name_list(text)]


def _name_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    return names
