//! RawObject: a JSON object edited in place, where only what an edit
//! touches is parsed and everything else is kept as the text it was read
//! as.
//!
//! Why: the user's `.claude.json` can be hundreds of megabytes of prompt
//! history, which a merge never needs to understand, and that history can
//! hold text a strict parser refuses although Claude wrote it (a lone
//! surrogate escape such as `"\ud83d"`, from a prompt cut in the middle of
//! an emoji: JavaScript writes and reads it, `serde_json` does not parse it
//! into a string). Kept raw, such values are written back byte for byte,
//! and the merge costs time and memory in what it changes, not in the
//! file's size.

use std::collections::HashMap;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// One member's value: as read, opened up for editing, or replaced.
#[derive(Debug)]
enum Node {
    Raw(Box<RawValue>),
    Object(RawObject),
    Value(Value),
}

/// A JSON object whose members keep their order and, unless edited, their
/// text.
#[derive(Debug, Default)]
pub(crate) struct RawObject {
    members: Vec<(String, Node)>,
}

impl RawObject {
    /// Parses a JSON object; its members' values stay raw.
    pub(crate) fn parse(text: &str) -> Result<RawObject, serde_json::Error> {
        serde_json::from_str(text)
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.members.iter().position(|(k, _)| k == key)
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// The member `key`, parsed (a strict parse of just that value).
    pub(crate) fn value(&self, key: &str) -> Result<Option<Value>, serde_json::Error> {
        let Some(at) = self.position(key) else {
            return Ok(None);
        };
        match &self.members[at].1 {
            Node::Raw(raw) => serde_json::from_str(raw.get()).map(Some),
            Node::Value(value) => Ok(Some(value.clone())),
            Node::Object(object) => {
                let text = serde_json::to_string(object)?;
                serde_json::from_str(&text).map(Some)
            }
        }
    }

    /// The member `key`'s text as read; `None` if absent or already opened
    /// or replaced (then see [`value`](Self::value)).
    pub(crate) fn value_raw(&self, key: &str) -> Option<&str> {
        match &self.members[self.position(key)?].1 {
            Node::Raw(raw) => Some(raw.get()),
            Node::Object(_) | Node::Value(_) => None,
        }
    }

    /// The member `key` as an object to edit, made one (empty) if it is
    /// absent; an error if it is there but not an object.
    pub(crate) fn object_mut(&mut self, key: &str) -> Result<&mut RawObject, serde_json::Error> {
        let at = match self.position(key) {
            Some(at) => at,
            None => {
                self.members
                    .push((key.to_string(), Node::Object(RawObject::default())));
                self.members.len() - 1
            }
        };
        let node = &mut self.members[at].1;
        let opened = match node {
            Node::Object(_) => None,
            // Anything but an object (`null`, `[]`, a number) holds no
            // members: it becomes the object written into it, as Claude
            // itself makes it one when it writes a member there.
            Node::Raw(raw) if !is_object_text(raw.get()) => Some(RawObject::default()),
            Node::Raw(raw) => Some(RawObject::parse(raw.get())?),
            Node::Value(value) => Some(RawObject::parse(&serde_json::to_string(value)?)?),
        };
        if let Some(opened) = opened {
            *node = Node::Object(opened);
        }
        match node {
            Node::Object(object) => Ok(object),
            // Made an object just above.
            Node::Raw(_) | Node::Value(_) => Err(serde::de::Error::custom("not an object")),
        }
    }

    /// Sets `key` to `value`, in its place if it is there, else last.
    pub(crate) fn set(&mut self, key: &str, value: Value) {
        match self.position(key) {
            Some(at) => self.members[at].1 = Node::Value(value),
            None => self.members.push((key.to_string(), Node::Value(value))),
        }
    }

    pub(crate) fn remove(&mut self, key: &str) {
        self.members.retain(|(k, _)| k != key);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The members' keys, in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|(key, _)| key.as_str())
    }

    /// Whether the member `key` is there and is an object.
    pub(crate) fn holds_object(&self, key: &str) -> bool {
        match self.position(key).map(|at| &self.members[at].1) {
            Some(Node::Object(_)) => true,
            Some(Node::Raw(raw)) => is_object_text(raw.get()),
            Some(Node::Value(value)) => value.is_object(),
            None => false,
        }
    }

    /// The object pretty-printed as Claude writes it (two spaces), with a
    /// final newline. Members never edited are written as they were read.
    pub(crate) fn to_pretty_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

/// Whether a value's JSON text is an object.
pub(crate) fn is_object_text(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

impl Serialize for RawObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.members.len()))?;
        for (key, node) in &self.members {
            match node {
                Node::Raw(raw) => map.serialize_entry(key, raw)?,
                Node::Object(object) => map.serialize_entry(key, object)?,
                Node::Value(value) => map.serialize_entry(key, value)?,
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = RawObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject, A::Error> {
                let mut members: Vec<(String, Node)> = Vec::new();
                let mut at: HashMap<String, usize> = HashMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: Box<RawValue> = map.next_value()?;
                    // A repeated key: the last value counts, in the first
                    // one's place, as in JavaScript.
                    match at.get(&key) {
                        Some(&i) => members[i].1 = Node::Raw(value),
                        None => {
                            at.insert(key.clone(), members.len());
                            members.push((key, Node::Raw(value)));
                        }
                    }
                }
                Ok(RawObject { members })
            }
        }
        deserializer.deserialize_map(Members)
    }
}

#[cfg(test)]
mod tests {
    use super::RawObject;
    use serde_json::json;

    #[test]
    fn what_is_not_edited_is_written_back_as_it_was_read() {
        let text = "{\n  \"a\": 1,\n  \"history\": [\n    \"cut \\ud83d\"\n  ],\n  \"m\": {\n    \"x\": 1\n  }\n}\n";
        let mut object = RawObject::parse(text).unwrap();
        object.object_mut("m").unwrap().set("y", json!(2));
        object.set("a", json!(3));
        object.set("new", json!(true));
        let written = String::from_utf8(object.to_pretty_bytes().unwrap()).unwrap();
        assert_eq!(
            written,
            "{\n  \"a\": 3,\n  \"history\": [\n    \"cut \\ud83d\"\n  ],\n  \"m\": {\n    \"x\": 1,\n    \"y\": 2\n  },\n  \"new\": true\n}\n"
        );
        // Untouched, a file comes back byte for byte.
        assert_eq!(
            RawObject::parse(text).unwrap().to_pretty_bytes().unwrap(),
            text.as_bytes()
        );
    }

    #[test]
    fn only_objects_are_read() {
        assert!(RawObject::parse("[1, 2]").is_err());
        assert!(RawObject::parse("{ not json").is_err());
        // A member that is not an object becomes the object written into it.
        let mut object = RawObject::parse("{\"m\": 5, \"n\": null}").unwrap();
        object.object_mut("m").unwrap().set("x", json!(1));
        object.object_mut("n").unwrap().set("y", json!(2));
        assert_eq!(
            String::from_utf8(object.to_pretty_bytes().unwrap()).unwrap(),
            "{\n  \"m\": {\n    \"x\": 1\n  },\n  \"n\": {\n    \"y\": 2\n  }\n}\n"
        );
    }
}
