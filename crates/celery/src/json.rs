//! Reading the JSON a Python client writes.
//!
//! Python's `json` (what kombu uses) writes what serde_json reads, with
//! three differences this module deals with:
//!
//! - Numbers: Python floats round-trip exactly and its integers have no
//!   size limit. The crate enables serde_json's `float_roundtrip` and
//!   `arbitrary_precision`, so a `Value` keeps `2**70` digit for digit and
//!   a float bit for bit; a typed `u64` argument that cannot hold a value
//!   fails to deserialize (a `TypeError` for the client).
//! - Depth: Python nests as deep as its recursion limit (about 1,000);
//!   serde_json stops at 128. [`parse_python`] counts the depth first and
//!   allows [`MAX_DEPTH`] levels, so the stack stays bounded.
//! - `NaN`, `Infinity`, `-Infinity` and lone surrogates (`"\ud800"`):
//!   Python writes them, a Rust `Value` or `String` cannot hold them. They
//!   are refused with a message that says which, so that the worker stores
//!   a FAILURE that tells the client why.

use serde::Deserialize;
use serde_json::Value;

/// The deepest nesting [`parse_python`] reads: deeper than a Python client
/// usually sends (its `json` module nests to about its recursion limit of
/// 1,000), shallow enough that reading, writing and dropping the value fit
/// a runner thread's stack.
pub const MAX_DEPTH: usize = 512;

/// Parses JSON as Python's `json.dumps` writes it; the error says what a
/// person can do about it.
pub fn parse_python(text: &[u8]) -> Result<Value, String> {
    let scan = Scan::of(text);
    if scan.depth > MAX_DEPTH {
        return Err(format!(
            "the arguments nest {} levels deep; this worker reads at most {MAX_DEPTH}",
            scan.depth
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(text);
    // Bounded by the scan above instead of serde_json's 128.
    de.disable_recursion_limit();
    let parsed = Value::deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| {
        if scan.python_constant {
            "the arguments hold NaN or Infinity (Python's float('nan'), float('inf')), \
             which a Rust JSON value cannot hold: send None or a string instead"
                .to_string()
        } else if scan.surrogate_escape {
            format!(
                "the arguments hold a lone surrogate (a str such as '\\ud800'), which a \
                 Rust string cannot hold: send valid Unicode or bytes as base64 ({e})"
            )
        } else {
            format!("the body is not JSON: {e}")
        }
    })
}

/// `text` with every surrogate escape (`\uD800`-`\uDFFF`, paired or not)
/// replaced by `\uFFFD`: for reading an envelope whose headers quote the
/// arguments (`argsrepr`) when only its ids and body matter.
pub fn without_surrogates(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let (mut i, mut in_string) = (0, false);
    while i < text.len() {
        let b = text[i];
        if in_string && b == b'\\' {
            let escape = text.get(i..i + 6).unwrap_or(&text[i..]);
            if is_surrogate_escape(escape) {
                out.extend_from_slice(b"\\ufffd");
                i += 6;
            } else {
                // Copied whole, so that `\\` or `\"` is not read again.
                out.extend_from_slice(text.get(i..i + 2).unwrap_or(&text[i..]));
                i += 2;
            }
            continue;
        }
        in_string ^= b == b'"';
        out.push(b);
        i += 1;
    }
    out
}

/// `\uD800` to `\uDFFF`, any case.
fn is_surrogate_escape(escape: &[u8]) -> bool {
    match escape {
        [b'\\', b'u', d, x, _, _] => {
            d.eq_ignore_ascii_case(&b'd')
                && matches!(x.to_ascii_lowercase(), b'8'..=b'9' | b'a'..=b'f')
        }
        _ => false,
    }
}

/// What a quick pass over the text finds outside string literals.
#[derive(Debug, Default, PartialEq)]
struct Scan {
    /// The deepest nesting of `[` and `{`.
    depth: usize,
    /// A bare `NaN` or `Infinity` (Python's, not JSON's).
    python_constant: bool,
    /// A `\uD800`-`\uDFFF` escape: half of a pair, or a lone surrogate.
    surrogate_escape: bool,
}

impl Scan {
    fn of(text: &[u8]) -> Scan {
        let mut scan = Scan::default();
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        for (i, &b) in text.iter().enumerate() {
            if in_string {
                match b {
                    b'u' if escaped => {
                        escaped = false;
                        let escape = text.get(i - 1..i + 5).unwrap_or_default();
                        scan.surrogate_escape |= is_surrogate_escape(escape);
                    }
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    scan.depth = scan.depth.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                b'N' | b'I' => {
                    let rest = &text[i..];
                    scan.python_constant |=
                        rest.starts_with(b"NaN") || rest.starts_with(b"Infinity");
                }
                _ => {}
            }
        }
        scan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_what_python_writes_exactly() {
        // json.dumps([2**70, 0.1, 5e-324, -0.0])
        let v = parse_python(b"[1180591620717411303424, 0.1, 5e-324, -0.0]").unwrap();
        assert_eq!(v.to_string(), "[1180591620717411303424,0.1,5e-324,-0.0]");
        assert_eq!(v[1].as_f64(), Some(0.1));
        assert!(serde_json::from_value::<u64>(v[0].clone()).is_err());
        assert_eq!(parse_python(b"{\"a\": [1]}").unwrap(), json!({"a": [1]}));
    }

    #[test]
    fn nests_to_max_depth_and_refuses_deeper_with_the_depth() {
        let nest = |n: usize| format!("{}0{}", "[".repeat(n), "]".repeat(n));
        // Read, written and dropped on a thread with the default stack, as
        // a runner thread does.
        std::thread::spawn(move || {
            let v = parse_python(nest(MAX_DEPTH).as_bytes()).unwrap();
            assert_eq!(v.to_string(), nest(MAX_DEPTH).replace(' ', ""));
            let e = parse_python(nest(MAX_DEPTH + 1).as_bytes()).unwrap_err();
            assert!(e.contains(&format!("{} levels", MAX_DEPTH + 1)), "{e}");
        })
        .join()
        .unwrap();
        // Brackets inside strings do not count.
        assert!(parse_python(format!("[\"{}\"]", "[".repeat(5000)).as_bytes()).is_ok());
    }

    #[test]
    fn surrogate_escapes_are_replaced_in_strings_only_when_asked() {
        let text = br#"{"a": "x\ud800\\ud800\uDFFFy\"", "b": 1}"#;
        let clean = without_surrogates(text);
        assert_eq!(
            clean,
            br#"{"a": "x\ufffd\\ud800\ufffdy\"", "b": 1}"#.to_vec()
        );
        assert_eq!(
            parse_python(&clean).unwrap()["a"],
            "x\u{FFFD}\\ud800\u{FFFD}y\""
        );
    }

    #[test]
    fn says_why_python_only_values_are_refused() {
        for text in ["[NaN]", "[Infinity]", "[-Infinity]", "{\"a\": [1, NaN]}"] {
            let e = parse_python(text.as_bytes()).unwrap_err();
            assert!(e.contains("NaN or Infinity"), "{text}: {e}");
        }
        for text in [r#"["\ud800"]"#, r#"["\uDC00x"]"#, r#"["\ud83d\u0041"]"#] {
            let e = parse_python(text.as_bytes()).unwrap_err();
            assert!(e.contains("lone surrogate"), "{text}: {e}");
        }
        // A pair is one character.
        assert_eq!(
            parse_python(br#"["\ud83d\ude00"]"#).unwrap(),
            json!(["\u{1F600}"])
        );
        // A string that merely says NaN is fine.
        assert_eq!(parse_python(br#"["NaN"]"#).unwrap(), json!(["NaN"]));
        let e = parse_python(b"[1,").unwrap_err();
        assert!(e.starts_with("the body is not JSON"), "{e}");
    }
}
