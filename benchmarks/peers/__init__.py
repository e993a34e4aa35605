"""paxon, etcd and PySyncObj side by side (issue 13): ``run.py`` is the command."""
