"""Models: backbones, the plain classifier, ProtoPNet, ClaDec decoders, training recipes."""
