// std.fwd.Mirror — an ingress-to-egress clone of every packet to a clone session, which
// the control plane points at the collector's port (entries.txt: mirroring_add).
#ifndef MOSAICO_STD_MIRROR_P4
#define MOSAICO_STD_MIRROR_P4

control MosaicoMirror()(bit<32> session) {
    apply {
        clone(CloneType.I2E, session);
    }
}

#endif  // MOSAICO_STD_MIRROR_P4
