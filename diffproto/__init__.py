"""DiffProto, the reference method of MOSXAV-Bench.

``mosxav_diffproto.method`` says which choices are the paper's and which are ours.
"""
