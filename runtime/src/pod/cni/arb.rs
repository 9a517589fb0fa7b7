//! Test-only: random JSON shaped like CNI configs and results, for the parsers' property
//! tests.

use proptest::prelude::*;
use serde_json::Value;

/// JSON values biased towards the keys and strings the CNI parsers look at.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u32>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z0-9./:%]{0,12}".prop_map(Value::from),
        Just(Value::from("10.0.0.1/24")),
        Just(Value::from("eth0")),
        Just(Value::from("1.0.0")),
        Just(Value::from("bridge")),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        let keys = prop_oneof![
            Just("ips".to_string()),
            Just("interfaces".to_string()),
            Just("address".to_string()),
            Just("interface".to_string()),
            Just("name".to_string()),
            Just("sandbox".to_string()),
            Just("code".to_string()),
            Just("msg".to_string()),
            Just("cniVersion".to_string()),
            Just("plugins".to_string()),
            Just("type".to_string()),
            Just("capabilities".to_string()),
            Just("portMappings".to_string()),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(keys, inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
