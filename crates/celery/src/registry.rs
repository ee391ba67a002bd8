//! Task names to plain functions.
//!
//! Celery names every task (`tasks.add`); a Rust task is a plain `fn(A) -> R`
//! (or `fn(A) -> Result<R, E>`) registered under a name. The worker looks up
//! a message's task by name; the executor looks up a submitted `fn` by its
//! address to find the name to put in the message.
//!
//! Arguments: Celery sends positional arguments as a JSON array. A message
//! with one argument `[a]` is read as `A` from `a`; otherwise the whole
//! array is read as `A` (so a tuple `A = (i64, i64)` takes Python's
//! `args=(1, 2)`). The executor sends its argument as `[a]`.
//!
//! Keyword arguments: a task whose parameter names are declared
//! ([`Registry::params`]) takes Celery's kwargs too: [`Registry::bind`] puts
//! each one at its parameter's position, as Python's call does, and refuses
//! an unknown, duplicate or missing one with a `TypeError` worded as
//! Python's. A task without declared names takes no keyword arguments.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Arc;

use future::{DynError, TaskError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// A task body: arguments in, JSON result or error out.
pub type Handler = Arc<dyn Fn(Value) -> Result<Value, TaskError> + Send + Sync>;

/// The tasks a worker can run and an executor can name.
#[derive(Clone, Default)]
pub struct Registry {
    by_name: HashMap<String, Handler>,
    by_fn: HashMap<usize, String>,
    params: HashMap<String, Vec<String>>,
}

/// A JSON conversion failed: reported to Python as `TypeError`, like a call
/// with the wrong arguments.
#[derive(Debug)]
pub struct TypeError(pub String);

impl Display for TypeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TypeError {}

/// How many bytes of a value an error message quotes: a message may carry
/// megabytes, and the FAILURE a refusal stores (and publishes, and a Python
/// client shows) must not carry them again.
const MAX_QUOTE: usize = 200;

/// `value` as displayed, rendered only up to [`MAX_QUOTE`] bytes (cut at a
/// character boundary, and said so). Every refusal that quotes a message
/// quotes it through this (here, `message`, `schedule`).
pub(crate) fn excerpt(value: &dyn Display) -> String {
    struct Capped {
        out: String,
        cut: bool,
    }
    impl std::fmt::Write for Capped {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let room = MAX_QUOTE - self.out.len();
            if s.len() <= room {
                self.out.push_str(s);
                return Ok(());
            }
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.out.push_str(&s[..end]);
            self.cut = true;
            Err(std::fmt::Error) // stops the rendering: the rest is not made
        }
    }
    let mut capped = Capped {
        out: String::new(),
        cut: false,
    };
    let _ = std::fmt::write(&mut capped, format_args!("{value}"));
    if capped.cut {
        capped.out.push_str("... (cut)");
    }
    capped.out
}

fn short_type_name<E>() -> String {
    let full = std::any::type_name::<E>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base).to_string()
}

/// Reads Celery's args array as `A` (see the module docs).
pub fn decode_args<A: DeserializeOwned>(args: Value) -> Result<A, TaskError> {
    if args.as_array().is_some_and(Vec::is_empty) {
        if let Ok(a) = serde_json::from_value(Value::Null) {
            return Ok(a);
        }
    }
    let one = match &args {
        Value::Array(items) if items.len() == 1 => Some(items[0].clone()),
        _ => None,
    };
    if let Some(one) = one {
        if let Ok(a) = serde_json::from_value(one) {
            return Ok(a);
        }
    }
    serde_json::from_value(args.clone()).map_err(|e| {
        TaskError::Failed(DynError::new(TypeError(format!(
            "cannot read the arguments {} as {}: {}",
            excerpt(&args),
            std::any::type_name::<A>(),
            excerpt(&e)
        ))))
    })
}

fn type_error(message: String) -> TaskError {
    TaskError::Failed(DynError::new(TypeError(message)))
}

fn encode_result<R: Serialize>(r: R) -> Result<Value, TaskError> {
    serde_json::to_value(r).map_err(|e| {
        TaskError::Failed(DynError::new(TypeError(format!(
            "cannot write the result as JSON: {e}"
        ))))
    })
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers `f` under `name` (a panic in `f` fails the task with its message).
    pub fn register<A, R>(&mut self, name: &str, f: fn(A) -> R) -> &mut Self
    where
        A: DeserializeOwned + 'static,
        R: Serialize + 'static,
    {
        self.by_fn.insert(f as usize, name.to_string());
        self.insert(
            name,
            Arc::new(move |args| encode_result(f(decode_args(args)?))),
        )
    }

    /// Registers a fallible `f`: its `Err` fails the task, named by the
    /// error's type (a Python client gets an exception of that name).
    pub fn register_fallible<A, R, E>(&mut self, name: &str, f: fn(A) -> Result<R, E>) -> &mut Self
    where
        A: DeserializeOwned + 'static,
        R: Serialize + 'static,
        E: Display + 'static,
    {
        self.by_fn.insert(f as usize, name.to_string());
        self.insert(
            name,
            Arc::new(move |args| match f(decode_args(args)?) {
                Ok(r) => encode_result(r),
                Err(e) => Err(TaskError::Failed(DynError::from_parts(
                    short_type_name::<E>(),
                    e.to_string(),
                ))),
            }),
        )
    }

    /// Declares the parameter names of task `name`, in order, so that a
    /// Python client's keyword arguments map onto them (`add.delay(2, y=3)`
    /// for `params("add", &["x", "y"])`).
    pub fn params(&mut self, name: &str, names: &[&str]) -> &mut Self {
        let names = names.iter().map(|n| n.to_string()).collect();
        self.params.insert(name.to_string(), names);
        self
    }

    /// Celery's positional `args` and keyword `kwargs` as the one args array
    /// task `name` reads: each keyword at its declared parameter's position.
    /// A `TypeError`, worded as Python's, for a keyword the task does not
    /// declare, a parameter given twice or one left out before a given one.
    pub fn bind(&self, name: &str, args: Value, kwargs: Value) -> Result<Value, TaskError> {
        // The name and the values quoted come from the message: an error
        // quotes them in part. The name is looked up whole.
        let quoted = || excerpt(&name);
        let kwargs = match kwargs {
            Value::Null => return Ok(args),
            Value::Object(map) if map.is_empty() => return Ok(args),
            Value::Object(map) => map,
            other => {
                return Err(type_error(format!(
                    "{}() got kwargs {}, not a dict",
                    quoted(),
                    excerpt(&other)
                )))
            }
        };
        let Value::Array(mut args) = args else {
            return Err(type_error(format!(
                "{}() got args {}, not a list",
                quoted(),
                excerpt(&args)
            )));
        };
        let names = self.params.get(name).map(Vec::as_slice).unwrap_or_default();
        if args.len() > names.len() {
            return Err(type_error(format!(
                "{}() takes {} positional arguments but {} were given (with keyword \
                 arguments, a Rust task reads only its declared parameters)",
                quoted(),
                names.len(),
                args.len()
            )));
        }
        let mut slots: Vec<Option<Value>> = args.drain(..).map(Some).collect();
        slots.resize(names.len(), None);
        for (key, value) in kwargs {
            let Some(at) = names.iter().position(|n| *n == key) else {
                let hint = if names.is_empty() {
                    " (this Rust task declares no parameter names: Registry::params)"
                } else {
                    ""
                };
                return Err(type_error(format!(
                    "{}() got an unexpected keyword argument '{}'{hint}",
                    quoted(),
                    excerpt(&key)
                )));
            };
            if slots[at].is_some() {
                return Err(type_error(format!(
                    "{}() got multiple values for argument '{}'",
                    quoted(),
                    excerpt(&key)
                )));
            }
            slots[at] = Some(value);
        }
        // Trailing parameters may be left out (a task with an `Option` or
        // a default reads fewer); a gap before a given one may not.
        let given = slots.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
        slots.truncate(given);
        slots
            .into_iter()
            .zip(names)
            .map(|(slot, n)| {
                slot.ok_or_else(|| {
                    type_error(format!("{}() missing required argument '{n}'", quoted()))
                })
            })
            .collect::<Result<Vec<Value>, TaskError>>()
            .map(Value::Array)
    }

    /// Registers a handler that works on the JSON directly.
    pub fn insert(&mut self, name: &str, handler: Handler) -> &mut Self {
        self.by_name.insert(name.to_string(), handler);
        self
    }

    /// The handler for `name`.
    pub fn get(&self, name: &str) -> Option<&Handler> {
        self.by_name.get(name)
    }

    /// The name `f` was registered under.
    pub fn name_of<A, R>(&self, f: fn(A) -> R) -> Option<&str> {
        self.by_fn.get(&(f as usize)).map(String::as_str)
    }

    /// Every registered name, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Runs task `name` on `args`, catching a panic.
    pub fn run(&self, name: &str, args: Value) -> Result<Value, TaskError> {
        let handler = self.get(name).ok_or_else(|| {
            TaskError::Failed(DynError::from_parts(
                "NotRegistered",
                format!(
                    "'{}' is not registered with this Rust worker",
                    excerpt(&name)
                ),
            ))
        })?;
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(args)))
            .unwrap_or_else(|p| Err(TaskError::from_panic(p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn add((a, b): (i64, i64)) -> i64 {
        a + b
    }
    fn double(n: u64) -> u64 {
        n * 2
    }
    fn parse(s: String) -> Result<i64, std::num::ParseIntError> {
        s.parse()
    }

    #[test]
    fn runs_by_name_with_python_and_rust_argument_shapes() {
        let mut r = Registry::new();
        r.register("t.add", add).register("t.double", double);
        r.register_fallible("t.parse", parse);
        assert_eq!(r.run("t.add", json!([1, 2])).unwrap(), json!(3)); // Python args=(1, 2)
        assert_eq!(r.run("t.add", json!([[1, 2]])).unwrap(), json!(3)); // our submit
        assert_eq!(r.run("t.double", json!([21])).unwrap(), json!(42));
        assert_eq!(r.name_of(add as fn((i64, i64)) -> i64), Some("t.add"));
        let e = r.run("t.parse", json!(["x"])).unwrap_err();
        assert_eq!(e.name(), "ParseIntError");
        let e = r.run("t.double", json!(["x"])).unwrap_err();
        assert_eq!(e.name(), "TypeError");
        let e = r.run("t.nope", json!([])).unwrap_err();
        assert_eq!(e.name(), "NotRegistered");
    }

    #[test]
    fn binds_keyword_arguments_as_python_does() {
        let mut r = Registry::new();
        r.register("t.add", add).params("t.add", &["x", "y"]);
        r.register("t.double", double);
        let bind = |name: &str, args: Value, kwargs: Value| r.bind(name, args, kwargs);
        assert_eq!(
            bind("t.add", json!([]), json!({"y": 3, "x": 2})).unwrap(),
            json!([2, 3])
        );
        assert_eq!(
            bind("t.add", json!([2]), json!({"y": 3})).unwrap(),
            json!([2, 3])
        );
        assert_eq!(
            bind("t.add", json!([2, 3]), json!({})).unwrap(),
            json!([2, 3])
        );
        assert_eq!(
            bind("t.double", json!([4]), Value::Null).unwrap(),
            json!([4])
        );
        let message = |name: &str, args: Value, kwargs: Value| {
            let e = bind(name, args, kwargs).unwrap_err();
            assert_eq!(e.name(), "TypeError");
            e.to_string()
        };
        let m = message("t.add", json!([2]), json!({"x": 3}));
        assert!(m.contains("multiple values for argument 'x'"), "{m}");
        let m = message("t.add", json!([2]), json!({"z": 3}));
        assert!(m.contains("unexpected keyword argument 'z'"), "{m}");
        let m = message("t.add", json!([]), json!({"y": 3}));
        assert!(m.contains("missing required argument 'x'"), "{m}");
        let m = message("t.double", json!([]), json!({"n": 3}));
        assert!(m.contains("declares no parameter names"), "{m}");
        let m = message("t.add", json!([1, 2, 3]), json!({"x": 3}));
        assert!(m.contains("takes 2 positional arguments but 3"), "{m}");
    }

    /// A task registered under a long name (longer than a refusal quotes)
    /// binds its keyword arguments as any other: the name is cut only where
    /// an error quotes it, never where the task's parameters are looked up.
    #[test]
    fn a_task_with_a_long_name_binds_its_keywords() {
        let long = format!("tasks.{}", "n".repeat(300));
        let mut r = Registry::new();
        r.register(&long, add).params(&long, &["x", "y"]);
        let bound = r.bind(&long, json!([1]), json!({"y": 2}));
        assert_eq!(bound.map_err(|e| e.to_string()), Ok(json!([1, 2])));
    }

    /// A refused message's FAILURE (stored, published, shown to a Python
    /// client) quotes the argument, or the keyword, in part: a message may
    /// carry megabytes, and its refusal must not carry them again.
    #[test]
    fn a_refusal_quotes_a_huge_argument_in_part() {
        let mut r = Registry::new();
        r.register("t.add", add).params("t.add", &["x", "y"]);
        r.register("t.double", double);
        let huge = "x".repeat(1 << 20);
        let mut kwargs = serde_json::Map::new();
        kwargs.insert(huge.clone(), json!(1));
        let refusals = [
            r.run("t.double", json!([huge])).unwrap_err(),
            r.run("t.double", json!([huge, huge])).unwrap_err(),
            r.bind("t.add", json!([]), json!(huge)).unwrap_err(),
            r.bind("t.add", json!(huge), json!({"x": 1})).unwrap_err(),
            r.bind("t.add", json!([]), Value::Object(kwargs))
                .unwrap_err(),
            r.run(&huge, json!([])).unwrap_err(),
        ];
        for e in refusals {
            let m = e.to_string();
            assert!(m.len() < 2000, "{} bytes: {}...", m.len(), &m[..200]);
        }
        // What was expected is still said.
        let m = r.run("t.double", json!([huge])).unwrap_err().to_string();
        assert!(m.contains("as u64"), "{m}");
    }
}
