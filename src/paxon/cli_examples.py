"""An example for the ``--help`` of every ``paxon`` command (its argparse epilog).

``add_examples(parser)`` walks the whole command tree once it is built and
gives each command its lines from ``EXAMPLES``, keyed by the command as typed
after ``paxon``. A command without an entry is a bug that
``tests/test_cli_help.py`` catches; the examples are the commands of
``docs/api.md``, runnable against ``make run``'s cluster as written.
"""

from __future__ import annotations

import argparse
from typing import Final

EXAMPLES: Final[dict[str, str]] = {
    "serve": """\
  paxon serve --id 1 --data-dir /var/lib/paxon --listen 10.0.0.1:7001 \\
              --http 10.0.0.1:8001 --peers 1=10.0.0.1:7001,2=10.0.0.2:7001,3=10.0.0.3:7001""",
    "dev": """\
  paxon dev                      # 3 nodes: native 7001-7003, HTTP 8001-8003
  paxon dev --nodes 5 --data-dir /tmp/five""",
    "put": """\
  paxon put greeting hello              # prints the new revision
  paxon put config.json --from-file ./config.json
  uname -a | paxon put hosts/this -    # the value's bytes from stdin (at most 1 MiB)""",
    "get": """\
  paxon get greeting                    # the value's bytes, then a newline
  paxon get config/ --prefix --limit 10 # KEY<TAB>VALUE, escaped: \\t \\n \\\\ \\xff
  paxon get config/ --prefix --keys-only
  paxon get config/ --prefix --count-only
  paxon get greeting --json             # {"key", "value" or "value_b64", "version", ...}""",
    "del": """\
  paxon del greeting                    # prints how many keys were deleted
  paxon del config/ --prefix""",
    "cas": """\
  paxon cas greeting hi --expect-version 1   # exit 1 if greeting is not at version 1
  paxon cas lock-owner me --expect-version 0 # only if it does not exist""",
    "txn": """\
  echo '{"compare": [{"key": "a", "target": "version", "op": "==", "operand": 0}],
         "success": [{"put": {"key": "a", "value": "1"}}], "failure": []}' | paxon txn""",
    "compact": """\
  paxon compact 500                     # reads below revision 500 then fail""",
    "status": """\
  paxon status
  paxon status --json --endpoints http://127.0.0.1:7001/,http://127.0.0.1:7002/""",
    "auth": """\
  paxon user add root && paxon auth enable""",
    "auth enable": """\
  paxon user add root                   # password: $PAXON_NEW_PASSWORD or a prompt
  paxon auth enable""",
    "auth disable": """\
  paxon auth disable --user root        # password: $PAXON_PASSWORD or a prompt""",
    "user": """\
  paxon user add alice && paxon user grant-role alice app-rw""",
    "user add": """\
  paxon user add alice                  # asks for the password (or $PAXON_NEW_PASSWORD)""",
    "user delete": """\
  paxon user delete alice --user root""",
    "user passwd": """\
  paxon user passwd alice --user root""",
    "user grant-role": """\
  paxon user grant-role alice app-rw""",
    "user revoke-role": """\
  paxon user revoke-role alice app-rw""",
    "user list": """\
  paxon user list --json""",
    "role": """\
  paxon role add app-rw && paxon role grant app-rw app/ readwrite""",
    "role add": """\
  paxon role add app-rw""",
    "role delete": """\
  paxon role delete app-rw""",
    "role grant": """\
  paxon role grant app-rw app/ readwrite     # or read; "" for every key""",
    "role revoke": """\
  paxon role revoke app-rw app/""",
    "role list": """\
  paxon role list --json""",
    "lease": """\
  paxon lease grant 10 && paxon put services/web-1 10.0.0.7:80 --lease ID""",
    "lease grant": """\
  paxon lease grant 10                  # prints the new lease's id""",
    "lease revoke": """\
  paxon lease revoke 7587862342348811   # its keys go with it""",
    "lease keep-alive": """\
  paxon lease keep-alive 7587862342348811        # until Ctrl-C
  paxon lease keep-alive 7587862342348811 --once""",
    "lease ttl": """\
  paxon lease ttl 7587862342348811 --keys""",
    "lease list": """\
  paxon lease list""",
    "endpoint": """\
  paxon endpoint health --cluster""",
    "endpoint health": """\
  paxon endpoint health                 # exit 0: all ready; 1: some not; 3: none answered
  paxon endpoint health --cluster --json""",
    "snapshot": """\
  paxon snapshot save backup.paxon && paxon snapshot status backup.paxon""",
    "snapshot save": """\
  paxon snapshot save backup.paxon      # a consistent backup at one revision (root under auth)""",
    "snapshot status": """\
  paxon snapshot status backup.paxon --json""",
    "snapshot restore": """\
  paxon snapshot restore backup.paxon --data-dir ./new/node1 --id 1 \\
      --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003""",
    "members": """\
  paxon members list""",
    "members list": """\
  paxon members list --json""",
    "members add": """\
  paxon members add 4=10.0.0.4:7001 --learner    # then start node 4 with --join""",
    "members promote": """\
  paxon members promote 4""",
    "members remove": """\
  paxon members remove 1""",
    "members transfer-leader": """\
  paxon members transfer-leader 2""",
    "lock": """\
  paxon lock jobs --ttl 10 -- ./run-job.sh       # $PAXON_FENCE holds the fencing token""",
    "watch": """\
  paxon watch config/ --prefix --json""",
    "elect": """\
  paxon elect db-primary host-a         # campaign, lead until stopped
  paxon elect db-primary                # observe who leads""",
    "bench": """\
  paxon bench --clients 128 --ops 100000 --read-ratio 0.5""",
    "sim": """\
  paxon sim --seeds 2000 --jobs 2
  paxon sim --seed 42 --trace""",
    "certs": """\
  paxon certs init --nodes 1,2,3 --hosts 10.0.0.1,10.0.0.2,10.0.0.3 --out certs""",
    "certs init": """\
  paxon certs init --cluster-id prod --nodes 1,2,3 --clients alice --out certs""",
    "certs add-node": """\
  paxon certs add-node 4 --hosts 10.0.0.4 --dir certs""",
    "certs add-client": """\
  paxon certs add-client bob --dir certs""",
    "certs show": """\
  paxon certs show certs/node-1.pem --ca certs/ca.pem""",
    "check": """\
  paxon check --data-dir /var/lib/paxon""",
}


_EPILOG_HEAD: Final = "example:\n"


def example_epilog(command: str) -> str:
    """The epilog of ``paxon COMMAND --help``."""
    return _EPILOG_HEAD + EXAMPLES[command]


class ExampleFormatter(argparse.HelpFormatter):
    """The default help layout, with the example's lines kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith(_EPILOG_HEAD):
            return text
        return super()._fill_text(text, width, indent)


def add_examples(parser: argparse.ArgumentParser) -> None:
    """Give every command under ``parser`` its example. One without an entry gets
    none (``tests/test_cli_help.py`` fails on it): a missing example must never
    stop the ``paxon`` command itself."""
    for command, subparser in commands_of(parser):
        if command in EXAMPLES:
            subparser.epilog = example_epilog(command)
            subparser.formatter_class = ExampleFormatter


def commands_of(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command under ``parser`` as typed after ``paxon`` (``"members add"``)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                command = subparser.prog.removeprefix("paxon ")
                found.append((command, subparser))
                found.extend(commands_of(subparser))
    return found
