//! A bound on how many JSON values a review may hold before the general path builds a
//! `serde_json::Value` of it: one streaming pass that allocates nothing and stops at the bound.
//!
//! The general path (UPDATEs, bodies with `\u` escapes or duplicate keys) reads the whole review
//! into a `Value`. That costs about 100 bytes per JSON value, so 3 MiB of tiny objects (the body
//! limit) cost up to about 170 MiB. Counting first keeps the cost of one review to about
//! `MAX_JSON_VALUES` values, whatever the body is made of.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The most JSON values (every object, array, string, number, bool and null, object keys not
/// counted) one AdmissionReview may hold on the general path. A Cluster review (the object and
/// the old object, at most 16 machines each, with metadata and status) holds a few thousand;
/// 50,000 values cost at most about 8 MiB as a `serde_json::Value`.
pub const MAX_JSON_VALUES: usize = 50_000;

/// What counting found.
#[derive(Debug)]
pub(crate) enum Counted {
    /// At most the bound.
    Within,
    /// More values than the bound (counting stopped there).
    TooMany,
    /// Not JSON: left to the real parse, which says where.
    NotJson,
}

const TOO_MANY: &str = "tkeha: too many JSON values";

/// Count the JSON values of `body`, stopping after `limit`.
pub(crate) fn count_values(body: &[u8], limit: usize) -> Counted {
    let left = Cell::new(limit);
    let mut de = serde_json::Deserializer::from_slice(body);
    let counted = Count { left: &left }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match counted {
        Ok(()) => Counted::Within,
        Err(e) if e.to_string().starts_with(TOO_MANY) => Counted::TooMany,
        Err(_) => Counted::NotJson,
    }
}

/// One value and everything inside it, each counted against `left`.
#[derive(Clone, Copy)]
struct Count<'c> {
    left: &'c Cell<usize>,
}

impl Count<'_> {
    fn tick<E: de::Error>(self) -> Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(n) => {
                self.left.set(n);
                Ok(())
            }
            None => Err(E::custom(TOO_MANY)),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.tick()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.tick()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.tick()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.tick()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.tick()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.tick()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.tick()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.tick()?;
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_value_and_stops_at_the_bound() {
        // {} [ 1 "a" null true {x:1.5} ] : object, array, 4 scalars, object, number = 8.
        let body = br#"{"a":[1,"a",null,true,{"x":1.5}]}"#;
        assert!(matches!(count_values(body, 8), Counted::Within));
        assert!(matches!(count_values(body, 7), Counted::TooMany));
        assert!(matches!(count_values(b"[]", 1), Counted::Within));
        assert!(matches!(count_values(b"[]", 0), Counted::TooMany));
    }

    #[test]
    fn what_is_not_json_is_left_to_the_parse() {
        for body in [&b"hello"[..], b"{\"a\":", b"[1,2] trailing", b""] {
            assert!(
                matches!(count_values(body, 100), Counted::NotJson),
                "{body:?}"
            );
        }
    }

    #[test]
    fn a_body_of_tiny_objects_is_counted_without_allocating_per_value() {
        let one = r#"{"ip":"1","port":0,"username":"","password":"!"},"#;
        let body = format!("[{}1]", one.repeat(20_000));
        // 20,000 objects of 5 values each, and the array and its last number.
        assert!(matches!(
            count_values(body.as_bytes(), 100_002),
            Counted::Within
        ));
        assert!(matches!(
            count_values(body.as_bytes(), MAX_JSON_VALUES),
            Counted::TooMany
        ));
    }

    #[test]
    fn a_string_with_escapes_counts_once() {
        assert!(matches!(
            count_values(br#"["\u0041\n\"", "x"]"#, 3),
            Counted::Within
        ));
    }
}
