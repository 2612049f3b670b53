// std.l4s.DualQ — the DualQ Coupled AQM of RFC 9332 on BMv2's two priority queues.
//
// Ingress (MosaicoDualQClassify): RFC 9331 classification — ECT(1) and CE take the L queue
// (priority 1, served first by BMv2's strict priority), Not-ECT and ECT(0) the Classic
// queue (priority 0) — and the DualQ unit that will manage the egress queue.
// End of ingress: the generated program stamps the first Classic arrival since the latest
// Classic departure (a top-level register, so that egress sees Classic packets that wait).
// Egress: the generated program runs the integer PI2 update and the verdict of
// mosaico_dsl/aqm/dualq.py with the unit's constants printed in, then applies the verdict
// here (MosaicoDualQApply). docs/l4s.md maps every line to RFC 9332's pseudocode.
#ifndef MOSAICO_STD_DUALQ_P4
#define MOSAICO_STD_DUALQ_P4

const bit<2> DUALQ_PASS = 2w0;
const bit<2> DUALQ_MARK = 2w1;
const bit<2> DUALQ_DROP = 2w2;
const bit<2> ECN_CE = 2w3;
const bit<32> PROB_MAX = 32w0xFFFFFFFF;  // p = 1 in 32-bit fixed point

control MosaicoDualQClassify(in headers_t hdr, inout mosaico_meta_t m,
                             inout standard_metadata_t standard_metadata)(bit<8> unit) {
    apply {
        m.aqm = unit;
        if (hdr.ipv4.isValid() && hdr.ipv4.ecn[0:0] == 1w1) {
            m.l4s = 1w1;
            standard_metadata.priority = 3w1;
        } else {
            m.l4s = 1w0;
            standard_metadata.priority = 3w0;
        }
    }
}

control MosaicoDualQApply(inout headers_t hdr, inout standard_metadata_t standard_metadata,
                          in bit<2> verdict) {
    apply {
        if (verdict == DUALQ_DROP) {
            mark_to_drop(standard_metadata);
        } else if (verdict == DUALQ_MARK) {
            hdr.ipv4.ecn = ECN_CE;
        }
    }
}

#endif  // MOSAICO_STD_DUALQ_P4
