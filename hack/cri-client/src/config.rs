//! CRI messages read from JSON the way crictl reads its config files: the proto field
//! names (`log_directory`, `security_context`), enums as their numbers, and any field
//! left out taking proto3's default (zero, empty, or an absent message).
//!
//! The generated types derive serde's `Deserialize`, but a derive requires every
//! field that is not an `Option`. [`Field`] is a deserializer over a JSON value that
//! supplies the default for each field the JSON leaves out (it learns the field names
//! from the derive's `deserialize_struct` call), and refuses a field the message does
//! not have, so a typo in a scenario's config fails instead of being ignored.

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess};
use serde::de::{Deserializer, Visitor};
use serde_json::{Error, Map, Value};

/// Reads a message of type `T` from `value`; errors name the field's JSON path.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    T::deserialize(Field {
        value: Some(value),
        path: String::new(),
    })
}

/// A JSON value at `path`, or `None` for a field the JSON leaves out.
struct Field {
    value: Option<Value>,
    path: String,
}

impl Field {
    fn at(&self, e: Error) -> Error {
        if self.path.is_empty() {
            e
        } else {
            de::Error::custom(format!("{}: {e}", self.path))
        }
    }
}

/// Scalars: the JSON value, or the type's zero when the field is left out.
macro_rules! scalars {
    ($($method:ident => $zero:expr),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let v = self.value.clone().unwrap_or_else(|| $zero);
            v.$method(visitor).map_err(|e| self.at(e))
        }
    )*};
}

impl<'de> Deserializer<'de> for Field {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            None | Some(Value::Null) => visitor.visit_unit(),
            Some(Value::Object(m)) => visitor.visit_map(Fields::new(m, &[], &self.path)),
            Some(Value::Array(a)) => visitor.visit_seq(Items::new(a, &self.path)),
            Some(ref v) => v.clone().deserialize_any(visitor).map_err(|e| self.at(e)),
        }
    }

    scalars! {
        deserialize_bool => Value::Bool(false),
        deserialize_i8 => Value::from(0),
        deserialize_i16 => Value::from(0),
        deserialize_i32 => Value::from(0),
        deserialize_i64 => Value::from(0),
        deserialize_u8 => Value::from(0),
        deserialize_u16 => Value::from(0),
        deserialize_u32 => Value::from(0),
        deserialize_u64 => Value::from(0),
        deserialize_f32 => Value::from(0.0),
        deserialize_f64 => Value::from(0.0),
        deserialize_char => Value::from("\0"),
        deserialize_str => Value::from(""),
        deserialize_string => Value::from(""),
        deserialize_bytes => Value::Array(Vec::new()),
        deserialize_byte_buf => Value::Array(Vec::new()),
        deserialize_identifier => Value::from(""),
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            None | Some(Value::Null) => visitor.visit_none(),
            Some(_) => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            None | Some(Value::Null) => visitor.visit_seq(Items::new(Vec::new(), &self.path)),
            Some(Value::Array(a)) => visitor.visit_seq(Items::new(a, &self.path)),
            Some(ref v) => v.clone().deserialize_seq(visitor).map_err(|e| self.at(e)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    /// A proto map (labels, annotations, sysctls): any keys.
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            None | Some(Value::Null) => visitor.visit_map(Fields::new(Map::new(), &[], &self.path)),
            Some(Value::Object(m)) => visitor.visit_map(Fields::new(m, &[], &self.path)),
            Some(ref v) => v.clone().deserialize_map(visitor).map_err(|e| self.at(e)),
        }
    }

    /// A message: the fields the JSON gives, then each one it leaves out as absent.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            None | Some(Value::Null) => {
                visitor.visit_map(Fields::new(Map::new(), fields, &self.path))
            }
            Some(Value::Object(m)) => {
                if let Some(k) = m.keys().find(|k| !fields.contains(&k.as_str())) {
                    let what = if self.path.is_empty() {
                        name.to_string()
                    } else {
                        self.path.clone()
                    };
                    return Err(de::Error::custom(format!(
                        "{what}: unknown field `{k}` (the message has {})",
                        fields.join(", ")
                    )));
                }
                visitor.visit_map(Fields::new(m, fields, &self.path))
            }
            Some(ref v) => v
                .clone()
                .deserialize_struct(name, fields, visitor)
                .map_err(|e| self.at(e)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let v = self.value.clone().unwrap_or(Value::Null);
        v.deserialize_enum(name, variants, visitor)
            .map_err(|e| self.at(e))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

/// An object's entries, then the message's fields it leaves out (value `None`).
struct Fields {
    entries: std::vec::IntoIter<(String, Option<Value>)>,
    next: Option<(String, Option<Value>)>,
    path: String,
}

impl Fields {
    fn new(map: Map<String, Value>, fields: &[&str], path: &str) -> Fields {
        let missing: Vec<(String, Option<Value>)> = fields
            .iter()
            .filter(|f| !map.contains_key(**f))
            .map(|f| (f.to_string(), None))
            .collect();
        let mut entries: Vec<(String, Option<Value>)> =
            map.into_iter().map(|(k, v)| (k, Some(v))).collect();
        entries.extend(missing);
        Fields {
            entries: entries.into_iter(),
            next: None,
            path: path.to_string(),
        }
    }
}

impl<'de> MapAccess<'de> for Fields {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let k = seed.deserialize(IntoDeserializer::<Error>::into_deserializer(key.clone()))?;
        self.next = Some((key, value));
        Ok(Some(k))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Error> {
        let (key, value) = self
            .next
            .take()
            .ok_or_else(|| <Error as de::Error>::custom("a map value without its key"))?;
        let path = if self.path.is_empty() {
            key
        } else {
            format!("{}.{key}", self.path)
        };
        seed.deserialize(Field { value, path })
    }
}

/// An array's items, each read with its index in the path.
struct Items {
    items: std::iter::Enumerate<std::vec::IntoIter<Value>>,
    path: String,
}

impl Items {
    fn new(items: Vec<Value>, path: &str) -> Items {
        Items {
            items: items.into_iter().enumerate(),
            path: path.to_string(),
        }
    }
}

impl<'de> SeqAccess<'de> for Items {
    type Error = Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Error> {
        match self.items.next() {
            None => Ok(None),
            Some((i, v)) => seed
                .deserialize(Field {
                    value: Some(v),
                    path: format!("{}[{i}]", self.path),
                })
                .map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_cri::v1::{ContainerConfig, PodSandboxConfig};
    use serde_json::json;

    #[test]
    fn fields_left_out_take_proto3_defaults() {
        let pod: PodSandboxConfig = from_value(json!({
            "metadata": {"name": "p", "uid": "u1"},
            "linux": {"security_context": {"namespace_options": {"network": 2}}}
        }))
        .expect("pod config");
        let md = pod.metadata.expect("metadata");
        assert_eq!(
            (md.name.as_str(), md.uid.as_str(), md.attempt),
            ("p", "u1", 0)
        );
        assert!(pod.dns_config.is_none());
        assert!(pod.labels.is_empty());
        let sc = pod
            .linux
            .expect("linux")
            .security_context
            .expect("security_context");
        assert_eq!(sc.namespace_options.expect("namespace_options").network, 2);
        assert!(sc.seccomp.is_none(), "a message left out stays absent");
    }

    #[test]
    fn repeated_and_map_fields() {
        let c: ContainerConfig = from_value(json!({
            "command": ["sh", "-c", "true"],
            "envs": [{"key": "A", "value": "1"}],
            "labels": {"x": "y"},
            "linux": {"security_context": {"capabilities": {"drop_capabilities": ["CHOWN"]}}}
        }))
        .expect("container config");
        assert_eq!(c.command, ["sh", "-c", "true"]);
        assert_eq!(c.envs[0].key, "A");
        assert_eq!(c.labels["x"], "y");
        let caps = c
            .linux
            .and_then(|l| l.security_context)
            .and_then(|s| s.capabilities);
        assert_eq!(caps.expect("capabilities").drop_capabilities, ["CHOWN"]);
    }

    #[test]
    fn an_unknown_or_mistyped_field_is_named() {
        let e = from_value::<ContainerConfig>(json!({"linux": {"resources": {"cpu_quotaa": 1}}}))
            .expect_err("unknown field");
        assert!(
            e.to_string()
                .contains("linux.resources: unknown field `cpu_quotaa`"),
            "{e}"
        );
        let e = from_value::<ContainerConfig>(json!({"envs": [{"key": 1}]})).expect_err("type");
        assert!(
            e.to_string().starts_with("envs[0].key: invalid type"),
            "{e}"
        );
    }
}
