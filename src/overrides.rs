//! The one override mechanism: `--set KEY=VALUE` applied to a TOML document (a spec, or a
//! claim of the registry) before it is checked. A key is a dotted path; an existing value
//! keeps its type (the text must parse as it), and whether a missing key may be added is the
//! caller's choice ([`Missing`]).

use crate::error::{Error, Result};

/// What to do with a key the document does not hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// Add it, typed from the text (integer, number, boolean, else string); the check of
    /// the document rejects unknown fields afterwards. Used for specs, whose optional
    /// fields may be absent from the file.
    Add,
    /// Refuse it, naming the known keys at that level. Used for claims: an optional field
    /// absent from an entry does not apply to that claim.
    Refuse,
}

/// Splits `KEY=VALUE` (both trimmed; the key must not be empty).
pub fn split(s: &str) -> Result<(String, String)> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| Error::invalid("--set", s, "KEY=VALUE"))
}

/// Sets the dotted `path` inside `root` to `text`. `key` is the whole key as the user
/// wrote it, for messages.
pub fn set(
    root: &mut toml::Value,
    path: &[&str],
    key: &str,
    text: &str,
    missing: Missing,
) -> Result<()> {
    let field = format!("--set {key}");
    let (last, parents) = path
        .split_last()
        .ok_or_else(|| Error::invalid(&field, text, "a non-empty key"))?;
    let mut v = root;
    for (i, p) in parents.iter().enumerate() {
        let table = v
            .as_table_mut()
            .ok_or_else(|| Error::invalid(&field, text, "a key inside a table"))?;
        if !table.contains_key(*p) {
            match missing {
                Missing::Add => {
                    table.insert(p.to_string(), toml::Value::Table(Default::default()));
                }
                Missing::Refuse => return Err(unknown(&field, text, table, &path[..=i])),
            }
        }
        v = table.get_mut(*p).expect("present or inserted above");
    }
    let table = v
        .as_table_mut()
        .ok_or_else(|| Error::invalid(&field, text, "a key inside a table"))?;
    let new = match table.get(*last) {
        Some(existing) => typed_like(existing, text).ok_or_else(|| {
            Error::invalid(
                &field,
                text,
                match existing {
                    toml::Value::Float(_) => "a finite number",
                    toml::Value::Integer(_) => "an integer",
                    toml::Value::Boolean(_) => "true or false",
                    toml::Value::String(_) => "a string",
                    toml::Value::Array(_) => "a TOML list such as [1000, 10000]",
                    _ => "nothing: this key holds a table; set one of its fields",
                },
            )
        })?,
        None if missing == Missing::Add => array(text)
            .map(Ok)
            .unwrap_or_else(|| text.parse::<i64>().map(toml::Value::Integer))
            .or_else(|_| text.parse::<f64>().map(toml::Value::Float))
            .or_else(|_| text.parse::<bool>().map(toml::Value::Boolean))
            .unwrap_or_else(|_| toml::Value::String(text.into())),
        None => return Err(unknown(&field, text, table, path)),
    };
    table.insert(last.to_string(), new);
    Ok(())
}

/// `text` parsed as the type of `existing` (an integer field also takes an integral number).
fn typed_like(existing: &toml::Value, text: &str) -> Option<toml::Value> {
    match existing {
        toml::Value::Float(_) => text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(toml::Value::Float),
        toml::Value::Integer(_) => text.parse::<i64>().ok().map(toml::Value::Integer),
        toml::Value::String(_) => Some(toml::Value::String(text.to_string())),
        toml::Value::Boolean(_) => text.parse::<bool>().ok().map(toml::Value::Boolean),
        toml::Value::Array(_) => array(text),
        _ => None,
    }
}

/// `text` as a TOML array (`[1000, 10000]`), if it is one.
fn array(text: &str) -> Option<toml::Value> {
    let doc: toml::Table = toml::from_str(&format!("v = {text}")).ok()?;
    doc.get("v").filter(|v| v.is_array()).cloned()
}

fn unknown(field: &str, text: &str, table: &toml::Table, here: &[&str]) -> Error {
    let mut known: Vec<&str> = table.keys().map(String::as_str).collect();
    known.sort_unstable();
    Error::invalid(
        field,
        text,
        format!(
            "a known key; `{}` is not one (known here: {})",
            here.join("."),
            known.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> toml::Value {
        toml::from_str("a = 1\nb = 0.5\nc = \"x\"\n[t]\nd = true\n").unwrap()
    }

    #[test]
    fn existing_values_keep_their_type() {
        let mut v = doc();
        set(&mut v, &["a"], "a", "7", Missing::Refuse).unwrap();
        set(&mut v, &["b"], "b", "2", Missing::Refuse).unwrap();
        set(&mut v, &["t", "d"], "t.d", "false", Missing::Refuse).unwrap();
        assert_eq!(v["a"].as_integer(), Some(7));
        assert_eq!(v["b"].as_float(), Some(2.0));
        assert_eq!(v["t"]["d"].as_bool(), Some(false));
        assert!(set(&mut v, &["a"], "a", "1.5", Missing::Refuse).is_err());
        assert!(set(&mut v, &["b"], "b", "inf", Missing::Refuse).is_err());
        assert!(set(&mut v, &["t"], "t", "1", Missing::Refuse).is_err());
    }

    #[test]
    fn lists_are_replaced_whole() {
        let mut v: toml::Value = toml::from_str("[e]\nn = [1, 2, 3]\n").unwrap();
        set(&mut v, &["e", "n"], "e.n", "[10, 20]", Missing::Refuse).unwrap();
        assert_eq!(v["e"]["n"].as_array().unwrap().len(), 2);
        assert_eq!(v["e"]["n"][1].as_integer(), Some(20));
        let e = set(&mut v, &["e", "n"], "e.n", "10", Missing::Refuse).unwrap_err();
        assert!(e.to_string().contains("a TOML list"), "{e}");
        set(&mut v, &["e", "m"], "e.m", "[0.5]", Missing::Add).unwrap();
        assert_eq!(v["e"]["m"][0].as_float(), Some(0.5));
    }

    #[test]
    fn missing_keys_are_added_or_refused_as_asked() {
        let mut v = doc();
        let e = set(&mut v, &["t", "zz"], "t.zz", "1", Missing::Refuse).unwrap_err();
        assert!(e.to_string().contains("known here: d"), "{e}");
        set(&mut v, &["u", "zz"], "u.zz", "0.25", Missing::Add).unwrap();
        assert_eq!(v["u"]["zz"].as_float(), Some(0.25));
        set(&mut v, &["w"], "w", "word", Missing::Add).unwrap();
        assert_eq!(v["w"].as_str(), Some("word"));
    }

    #[test]
    fn split_needs_a_key_and_an_equals_sign() {
        assert_eq!(split(" a.b = 3 ").unwrap(), ("a.b".into(), "3".into()));
        assert!(split("a.b").is_err());
        assert!(split("=3").is_err());
    }
}
