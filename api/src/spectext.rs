//! [`review_create_spec_text`]: the rules over a Cluster's `spec` given as JSON text, decoded
//! straight into the typed spec without building a `serde_json::Value` of it first.
//!
//! The webhook's per-request fast path for creates. It answers only when the result is
//! certainly the same as [`crate::review`]'s (same checks of object positions, same decode,
//! same defaults and rules) and returns `None` for anything else, e.g. a field of the wrong
//! type, a duplicate key or a `\u` escape; the caller then takes the general path, which also
//! words the errors.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::defaults::apply_defaults;
use crate::field::FieldError;
use crate::review::Policy;
use crate::types::ClusterSpec;
use crate::validation::{Ctx, validate_spec};

/// What [`crate::review`] decides for a create, without the defaulted object.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub errors: Vec<FieldError>,
    pub warnings: Vec<String>,
    pub patch: json_patch::Patch,
}

/// [`crate::review`] of a create whose object has `apiVersion: platform.tkestack.io/v1` and
/// `kind: Cluster` and this `spec` (the JSON text of a JSON object), or `None` when the answer
/// must come from [`crate::review`] instead.
pub fn review_create_spec_text(spec_json: &str, policy: &Policy) -> Option<Verdict> {
    // Escapes decode the same either way, but `\u` is where JSON texts and serde_json's paths
    // can part (lone surrogates): left to the general path.
    if spec_json.contains("\\u") || !spec_json.trim_start().starts_with('{') {
        return None;
    }
    // `check_objects`: every struct position holds an object or null.
    serde_json::from_str::<Object<SpecShape>>(spec_json).ok()?;
    let mut spec: ClusterSpec = serde_json::from_str(spec_json).ok()?;
    let ops = apply_defaults(&mut spec);
    let mut ctx = Ctx::new(&spec, policy);
    validate_spec(&mut ctx);
    Some(Verdict {
        errors: ctx.errors,
        warnings: ctx.warnings,
        patch: json_patch::Patch(ops),
    })
}

/// The struct positions `check_objects` inspects (unknown and other fields are skipped).
#[allow(dead_code)] // fields read by serde only
#[derive(Deserialize)]
struct SpecShape {
    #[serde(default)]
    features: Option<Object<FeaturesShape>>,
    #[serde(default)]
    properties: Option<Object<IgnoredAny>>,
    #[serde(default)]
    machines: Option<ArrayOr<Object<MachineShape>>>,
}

#[allow(dead_code)] // fields read by serde only
#[derive(Deserialize)]
struct FeaturesShape {
    #[serde(default)]
    ha: Option<Object<HaShape>>,
}

#[allow(dead_code)] // fields read by serde only
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HaShape {
    #[serde(default)]
    tke: Option<Object<IgnoredAny>>,
    #[serde(default)]
    third_party: Option<Object<IgnoredAny>>,
}

#[allow(dead_code)] // fields read by serde only
#[derive(Deserialize)]
struct MachineShape {
    #[serde(default)]
    taints: Option<ArrayOr<Object<IgnoredAny>>>,
}

/// A JSON object read as `T`, or null; anything else (an array in particular) is an error.
struct Object<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object or null")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Object(PhantomData))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Object(PhantomData))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Elements read as `T` when an array; any other JSON value is accepted as it is.
struct ArrayOr<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ArrayOr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = ArrayOr<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<T>()?.is_some() {}
                Ok(ArrayOr(PhantomData))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(ArrayOr(PhantomData))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ArrayOr(PhantomData))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ArrayOr(PhantomData))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ArrayOr(PhantomData))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ArrayOr(PhantomData))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(ArrayOr(PhantomData))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(ArrayOr(PhantomData))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}
