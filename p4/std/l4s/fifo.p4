// std.l4s.Fifo — one tail-drop FIFO: every packet takes the same (Classic) queue, whose
// depth the launch script sets from `buffer`.
#ifndef MOSAICO_STD_FIFO_P4
#define MOSAICO_STD_FIFO_P4

control MosaicoFifo(inout mosaico_meta_t m, inout standard_metadata_t standard_metadata) {
    apply {
        m.aqm = 8w0;
        m.l4s = 1w0;
        standard_metadata.priority = 3w0;
    }
}

#endif  // MOSAICO_STD_FIFO_P4
