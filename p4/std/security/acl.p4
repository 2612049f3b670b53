// std.security.Acl — the first matching rule decides; the generated per-instance ternary
// table encodes rule order as entry priority and `default` as its default action.
#ifndef MOSAICO_STD_ACL_P4
#define MOSAICO_STD_ACL_P4

control MosaicoAcl(inout mosaico_meta_t m, in bool deny, out bool dropped) {
    apply {
        dropped = deny;
        if (deny) {
            m.drop = 1w1;
        }
    }
}

#endif  // MOSAICO_STD_ACL_P4
