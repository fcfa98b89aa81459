//! serde `deserialize_with` helpers for the Cluster types: a struct position takes a JSON object
//! (or null), never the array serde's derived structs would also accept (fields by position);
//! and a bounded list or map is decoded only up to one entry past its bound.
//!
//! TKEStack's Go types only ever read objects there, and the defaults patch addresses fields by
//! name, so an array must not decode. `review` words the error itself before decoding
//! (`check_objects`); these helpers make the typed decode alone just as strict, which lets the
//! webhook decode a spec in one pass over its text.
//!
//! Past its bound (`crate::limits`), a list or map is reported by its length, so the decode keeps
//! at most [`crate::limits::decoded`]`(MAX) + 1` entries and skips the rest without building
//! anything: 3 MiB of `{}` in `spec.machines` is a million machines of 200 bytes each if
//! decoded. The skipped entries are neither checked nor looked into. Their number reaches the
//! rules through [`crate::unknown::Lengths`], found by the same pass that finds unknown fields.
use std::fmt;
use std::marker::PhantomData;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// An optional struct field: absent or null is `None`, an object is decoded, anything else
/// is an error.
pub fn object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_option(OptionOf(ObjectOnly::<T>(PhantomData)))
}

/// An optional list of structs: absent or null is `None`; otherwise an array whose every
/// element is an object.
pub fn objects<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_option(OptionOf(ListOf::<T>(PhantomData)))
}

/// An optional list of structs decoded up to `decoded(MAX) + 1` elements (each an object); the
/// rest are skipped unread.
pub fn objects_upto<'de, D, T, const MAX: usize>(
    deserializer: D,
) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_option(OptionOf(Upto::<ObjectOnly<T>, MAX>(PhantomData)))
}

/// An optional list decoded up to `decoded(MAX) + 1` elements; the rest are skipped unread.
pub fn list_upto<'de, D, T, const MAX: usize>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    deserializer.deserialize_option(OptionOf(Upto::<PhantomData<T>, MAX>(PhantomData)))
}

/// An optional map of strings decoded up to `decoded(MAX) + 1` entries; the rest are skipped
/// unread.
/// A key given twice in a text (among the entries decoded) is refused, as a derived struct
/// refuses a field given twice: a JSON value keeps the last, a map would keep the last too, but
/// a count past the bound could not tell them apart.
pub fn map_upto<'de, D, const MAX: usize>(
    deserializer: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error>
where
    D: Deserializer<'de>,
{
    deserializer.deserialize_option(OptionOf(MapUpto::<MAX>))
}

/// The seed of one element of a bounded list.
trait ElementSeed<'de>: Default {
    type Value;
    fn next<A: SeqAccess<'de>>(seq: &mut A) -> Result<Option<Self::Value>, A::Error>;
}

impl<'de, T: Deserialize<'de>> ElementSeed<'de> for PhantomData<T> {
    type Value = T;
    fn next<A: SeqAccess<'de>>(seq: &mut A) -> Result<Option<T>, A::Error> {
        seq.next_element()
    }
}

impl<T> Default for ObjectOnly<T> {
    fn default() -> Self {
        ObjectOnly(PhantomData)
    }
}

impl<'de, T: Deserialize<'de>> ElementSeed<'de> for ObjectOnly<T> {
    type Value = T;
    fn next<A: SeqAccess<'de>>(seq: &mut A) -> Result<Option<T>, A::Error> {
        seq.next_element_seed(ObjectOnly::<T>(PhantomData))
    }
}

/// A JSON array whose first `decoded(MAX) + 1` elements are read with `S`.
struct Upto<S, const MAX: usize>(PhantomData<S>);

impl<'de, S: ElementSeed<'de>, const MAX: usize> DeserializeSeed<'de> for Upto<S, MAX> {
    type Value = Vec<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, S: ElementSeed<'de>, const MAX: usize> Visitor<'de> for Upto<S, MAX> {
    type Value = Vec<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let keep = crate::limits::decoded(MAX);
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(keep + 1).min(64));
        while out.len() <= keep {
            match S::next(&mut seq)? {
                Some(item) => out.push(item),
                None => return Ok(out),
            }
        }
        // Past the bound: skipped whole (`IgnoredAny`), which is how the unknown-field pass sees
        // and counts them.
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(out)
    }
}

/// A JSON object of strings whose first `decoded(MAX) + 1` entries are kept.
struct MapUpto<const MAX: usize>;

impl<'de, const MAX: usize> DeserializeSeed<'de> for MapUpto<MAX> {
    type Value = BTreeMap<String, String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, const MAX: usize> Visitor<'de> for MapUpto<MAX> {
    type Value = BTreeMap<String, String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let keep = crate::limits::decoded(MAX);
        let mut out = BTreeMap::new();
        while out.len() <= keep {
            let Some((key, value)) = map.next_entry::<String, String>()? else {
                return Ok(out);
            };
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key {}",
                    crate::field::quote(&key)
                )));
            }
            out.insert(key, value);
        }
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value::<IgnoredAny>()?;
        }
        Ok(out)
    }
}

/// `None` for null, otherwise the inner seed.
struct OptionOf<S>(S);

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for OptionOf<S> {
    type Value = Option<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(d).map(Some)
    }
}

/// `T` read from a JSON object only (`deserialize_map` refuses arrays and scalars).
struct ObjectOnly<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for ObjectOnly<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOnly<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map))
    }
}

/// A JSON array of objects, each read as `T`.
struct ListOf<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for ListOf<T> {
    type Value = Vec<T>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for ListOf<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(ObjectOnly::<T>(PhantomData))? {
            out.push(item);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[derive(Deserialize, Debug, PartialEq, Default)]
    struct Inner {
        #[serde(default)]
        a: Option<i64>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Outer {
        #[serde(default, deserialize_with = "object")]
        one: Option<Inner>,
        #[serde(default, deserialize_with = "objects")]
        many: Option<Vec<Inner>>,
    }

    fn from_text(text: &str) -> Result<Outer, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    fn from_value(text: &str) -> Result<Outer, String> {
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        Outer::deserialize(&value).map_err(|e| e.to_string())
    }

    #[test]
    fn objects_and_null_decode_from_text_and_from_values() {
        for decode in [from_text, from_value] {
            let full = decode(r#"{"one":{"a":1},"many":[{"a":2},{}]}"#).unwrap();
            assert_eq!(full.one, Some(Inner { a: Some(1) }));
            assert_eq!(
                full.many,
                Some(vec![Inner { a: Some(2) }, Inner::default()])
            );
            let empty = decode(r#"{"one":null,"many":null}"#).unwrap();
            assert_eq!((empty.one, empty.many), (None, None));
            let absent = decode("{}").unwrap();
            assert_eq!((absent.one, absent.many), (None, None));
            assert_eq!(decode(r#"{"many":[]}"#).unwrap().many, Some(vec![]));
        }
    }

    #[test]
    fn arrays_and_scalars_at_struct_positions_are_refused() {
        // A derived struct alone would take `[]` and `[1]` as fields by position.
        let plain: Inner = serde_json::from_value(json!([1])).unwrap();
        assert_eq!(plain.a, Some(1));
        for decode in [from_text, from_value] {
            for bad in [
                r#"{"one":[]}"#,
                r#"{"one":[1]}"#,
                r#"{"one":5}"#,
                r#"{"one":"x"}"#,
                r#"{"many":[[1]]}"#,
                r#"{"many":[{"a":1},null]}"#,
                r#"{"many":[5]}"#,
                r#"{"many":{"a":1}}"#,
                r#"{"many":"x"}"#,
            ] {
                assert!(decode(bad).is_err(), "{bad} decoded");
            }
        }
    }

    #[test]
    fn errors_keep_their_path() {
        let value = json!({"many": [{"a": 1}, {"a": "x"}]});
        let err = serde_path_to_error::deserialize::<_, Outer>(&value).unwrap_err();
        assert_eq!(err.path().to_string(), "many[1].a");
    }
}

#[cfg(test)]
mod cluster_tests {
    #![allow(clippy::unwrap_used)]
    use crate::types::ClusterSpec;
    use serde_json::{Value, json};

    /// Every struct position `review` checks for an object refuses an array in the typed
    /// decode too, from text and from a value.
    #[test]
    fn the_cluster_spec_refuses_arrays_wherever_review_wants_an_object() {
        let good = json!({
            "features": {"ha": {"tke": {"vip": "10.0.0.9"}, "thirdParty": {"vip": "10.0.0.8"}}},
            "properties": {"maxNodePodNum": 64},
            "machines": [{"ip": "10.0.0.1", "taints": [{"key": "a", "effect": "NoSchedule"}]}]
        });
        let decode = |v: &Value| {
            let from_value = ClusterSpec::deserialize(v).is_ok();
            let from_text = serde_json::from_str::<ClusterSpec>(&v.to_string()).is_ok();
            assert_eq!(from_value, from_text, "{v}");
            from_value
        };
        assert!(decode(&good));
        let pointers = [
            "/features",
            "/properties",
            "/features/ha",
            "/features/ha/tke",
            "/features/ha/thirdParty",
            "/machines/0",
            "/machines/0/taints/0",
        ];
        for pointer in pointers {
            for bad in [json!([]), json!(["x"]), json!(1)] {
                let mut spec = good.clone();
                *spec.pointer_mut(pointer).unwrap() = bad.clone();
                assert!(!decode(&spec), "{pointer} = {bad} decoded");
            }
        }
    }

    use serde::Deserialize as _;
}
