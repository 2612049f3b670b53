// std.security.RateLimit — police with a two-rate three-colour meter whose two rates are
// both the limit: green below it, red above it (yellow cannot occur), red is dropped.
#ifndef MOSAICO_STD_RATELIMIT_P4
#define MOSAICO_STD_RATELIMIT_P4

const bit<2> MOSAICO_METER_RED = 2w2;  // V1MODEL_METER_COLOR_RED

control MosaicoRateLimit(inout mosaico_meta_t m, in bit<2> color, out bool dropped) {
    apply {
        dropped = color == MOSAICO_METER_RED;
        if (dropped) {
            m.drop = 1w1;
        }
    }
}

#endif  // MOSAICO_STD_RATELIMIT_P4
