use super::*;
use proptest::prelude::*;
use serde_json::json;

fn hex(v: &Value, t: &Type) -> String {
    hex::encode(to_msgpack(v, t).expect("encodes"))
}

fn obj_ab() -> Type {
    Type::object([("a", Type::String), ("b", Type::Number)])
}

#[test]
fn golden_encodings() {
    let cases: Vec<(Value, Type, &str)> = vec![
        (Value::Unknown, Type::String, "d40000"),
        (Value::Null, Type::String, "c0"),
        (Value::string("hi"), Type::String, "a26869"),
        (Value::int(1), Type::Number, "01"),
        (Value::int(-1), Type::Number, "ff"),
        (Value::int(300), Type::Number, "cd012c"),
        (
            Value::Number(Number::parse("1.5").unwrap()),
            Type::Number,
            "cb3ff8000000000000",
        ),
        (Value::Bool(true), Type::Bool, "c3"),
        (
            Value::string_list(["a"]),
            Type::list(Type::String),
            "91a161",
        ),
        (Value::string_list(["a"]), Type::set(Type::String), "91a161"),
        (
            Value::string_map([("k", "v")]),
            Type::map(Type::String),
            "81a16ba176",
        ),
        (
            Value::object([("a", Value::string("x")), ("b", Value::Null)]),
            obj_ab(),
            "82a161a178a162c0",
        ),
        // Missing attributes are written as null: cty needs every attribute.
        (
            Value::object([("a", Value::string("x"))]),
            obj_ab(),
            "82a161a178a162c0",
        ),
        (
            Value::Dynamic(Type::String, Box::new(Value::string("x"))),
            Type::Dynamic,
            "92c40822737472696e6722a178",
        ),
        (
            Value::List(vec![Value::string("x"), Value::Bool(false)]),
            Type::Tuple(vec![Type::String, Type::Bool]),
            "92a178c2",
        ),
    ];
    for (v, t, want) in cases {
        assert_eq!(hex(&v, &t), want, "encoding {v:?} as {t:?}");
        let back = from_msgpack(&hex::decode(want).unwrap(), &t).expect("decodes");
        let expected = match (&v, &t) {
            (Value::Map(m), Type::Object(attrs)) => {
                let mut full = m.clone();
                for k in attrs.keys() {
                    full.entry(k.clone()).or_insert(Value::Null);
                }
                Value::Map(full)
            }
            _ => v.clone(),
        };
        assert_eq!(back, expected, "decoding {want}");
    }
}

#[test]
fn big_numbers_travel_as_decimal_text() {
    let big = Value::Number(Number::parse("123456789012345678901234567890").unwrap());
    let bytes = to_msgpack(&big, &Type::Number).unwrap();
    assert_eq!(bytes[0], 0xbe, "fixstr of 30 bytes");
    assert_eq!(from_msgpack(&bytes, &Type::Number).unwrap(), big);
    let u = Value::Number(Number::from_u64(u64::MAX));
    assert_eq!(hex(&u, &Type::Number), "cfffffffffffffffff");
}

#[test]
fn any_extension_decodes_as_unknown() {
    // fixext1 type 0 (plain), ext8 type 12 with a refinement map {1: false}, fixext4.
    for h in ["d40000", "c7030c8101c2", "d60500000000"] {
        assert_eq!(
            from_msgpack(&hex::decode(h).unwrap(), &Type::String).unwrap(),
            Value::Unknown,
            "{h}"
        );
    }
    let obj = hex::decode("82a161c7030c8101c2a162c0").unwrap();
    assert_eq!(
        from_msgpack(&obj, &obj_ab()).unwrap().get("a"),
        &Value::Unknown
    );
}

#[test]
fn decode_errors_name_the_attribute_path() {
    let t = Type::object([
        ("tags", Type::list(Type::Number)),
        ("labels", Type::map(Type::Bool)),
    ]);
    // {"tags": ["x"], "labels": {}}
    let bytes = hex::decode("82a47461677391a178a66c6162656c7380").unwrap();
    let err = from_msgpack(&bytes, &t).unwrap_err();
    assert_eq!(err.path.to_string(), "tags[0]");
    assert!(
        err.to_string().starts_with("tags[0]: expected number"),
        "{err}"
    );
    // {"labels": {"team": "x"}}
    let bytes = hex::decode("81a66c6162656c7381a47465616da178").unwrap();
    assert_eq!(
        from_msgpack(&bytes, &t).unwrap_err().path.to_string(),
        "labels[\"team\"]"
    );
    // an attribute the schema does not have
    let bytes = hex::decode("81a178c0").unwrap();
    assert!(from_msgpack(&bytes, &t)
        .unwrap_err()
        .to_string()
        .contains("unsupported attribute \"x\""));
}

#[test]
fn trailing_bytes_and_garbage_are_errors_not_panics() {
    assert!(from_msgpack(&[0xc0, 0xc0], &Type::String).is_err());
    assert!(from_msgpack(&[0xdc], &Type::list(Type::String)).is_err());
    assert!(from_msgpack(&[], &Type::String).is_err());
}

#[test]
fn json_state_fills_missing_attributes_and_drops_removed_ones() {
    let t = Type::object([
        ("id", Type::String),
        ("count", Type::Number),
        ("tags", Type::list(Type::String)),
        ("d", Type::Dynamic),
    ]);
    let j = json!({"id": "x", "count": 3, "gone": true, "d": {"type": "string", "value": "v"}});
    let v = from_json(&j, &t).unwrap();
    assert_eq!(v.get("id"), &Value::string("x"));
    assert_eq!(v.get("count").as_i64(), Some(3));
    assert_eq!(v.get("tags"), &Value::Null);
    assert_eq!(
        v.get("d"),
        &Value::Dynamic(Type::String, Box::new(Value::string("v")))
    );
    assert_eq!(to_json(&v, &t).unwrap()["count"], json!(3));
    assert!(to_json(&Value::Unknown, &Type::String).is_err());
}

#[test]
fn type_json_round_trips() {
    let t = Type::object([
        ("a", Type::list(Type::map(Type::set(Type::Bool)))),
        ("b", Type::Tuple(vec![Type::String, Type::Dynamic])),
    ]);
    assert_eq!(Type::from_json(&t.to_json()).unwrap(), t);
    assert_eq!(Type::String.to_json_bytes(), b"\"string\"");
}

fn arb_type() -> impl Strategy<Value = Type> {
    let leaf = prop_oneof![Just(Type::String), Just(Type::Number), Just(Type::Bool)];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(Type::list),
            inner.clone().prop_map(Type::map),
            prop::collection::btree_map("[a-z]{1,4}", inner.clone(), 0..4).prop_map(Type::Object),
            prop::collection::vec(inner, 0..3).prop_map(Type::Tuple),
        ]
    })
}

fn arb_value(t: Type) -> BoxedStrategy<Value> {
    let special = prop_oneof![Just(Value::Null), Just(Value::Unknown)];
    let known: BoxedStrategy<Value> = match t {
        Type::String => ".{0,12}".prop_map(Value::String).boxed(),
        Type::Number => prop_oneof![
            any::<i64>().prop_map(Value::int),
            any::<u64>().prop_map(|u| Value::Number(Number::from_u64(u))),
            (-1.0e12f64..1.0e12).prop_map(|f| Value::Number(Number::from_f64(f).unwrap())),
        ]
        .boxed(),
        Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Type::List(et) | Type::Set(et) => prop::collection::vec(arb_value(*et), 0..4)
            .prop_map(Value::List)
            .boxed(),
        Type::Map(et) => prop::collection::btree_map("[a-z]{0,3}", arb_value(*et), 0..4)
            .prop_map(Value::Map)
            .boxed(),
        Type::Object(attrs) => {
            let parts: Vec<_> = attrs
                .into_iter()
                .map(|(k, t)| arb_value(t).prop_map(move |v| (k.clone(), v)))
                .collect();
            parts
                .prop_map(|kv| Value::Map(kv.into_iter().collect()))
                .boxed()
        }
        Type::Tuple(ts) => {
            let parts: Vec<_> = ts.into_iter().map(arb_value).collect();
            parts.prop_map(Value::List).boxed()
        }
        Type::Dynamic => Just(Value::Null).boxed(),
    };
    prop_oneof![1 => special, 4 => known].boxed()
}

fn arb_typed_value() -> impl Strategy<Value = (Type, Value)> {
    arb_type().prop_flat_map(|t| arb_value(t.clone()).prop_map(move |v| (t.clone(), v)))
}

proptest! {
    #[test]
    fn msgpack_round_trips((t, v) in arb_typed_value()) {
        let bytes = to_msgpack(&v, &t).unwrap();
        prop_assert_eq!(from_msgpack(&bytes, &t).unwrap(), v);
    }

    #[test]
    fn json_round_trips_known_values((t, v) in arb_typed_value()) {
        prop_assume!(v.is_wholly_known());
        let j = to_json(&v, &t).unwrap();
        prop_assert_eq!(from_json(&j, &t).unwrap(), v);
    }

    #[test]
    fn decoding_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64), t in arb_type()) {
        let _ = from_msgpack(&bytes, &t);
    }
}
