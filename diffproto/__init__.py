"""DiffProto, the reference method of MOSXAV-Bench (see ``diffproto.method`` for what is the paper's and what is ours)."""
