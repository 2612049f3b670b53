// mosaico — the deparser: headers back onto the wire in parse order (invalid ones skipped).
#ifndef MOSAICO_DEPARSER_P4
#define MOSAICO_DEPARSER_P4

control MosaicoDeparser(packet_out packet, in headers_t hdr) {
    apply {
        packet.emit(hdr.ethernet);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.ipv4_options);
        packet.emit(hdr.tcp);
        packet.emit(hdr.udp);
    }
}

#endif  // MOSAICO_DEPARSER_P4
