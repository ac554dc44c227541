use proptest::prelude::*;
proptest! { #[test] fn stub(x in 0..1u8) { prop_assert!(x < 1); } }
