//! A failing `Serialize` or `Deserialize` impl keeps its own message, on all
//! four sides: the argument encoded in the parent and
//! decoded in the worker, the result encoded in the worker and decoded in
//! the parent. Postcard's own error drops the text ("Serde Serialization
//! Error"); `CodecError::message` promises the impl's. Nested values too:
//! the failing value sits inside a tuple.

mod common;

use process_pool::ProcessPoolExecutor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const SER: &str = "Grumpy refuses to be serialized";
const DE: &str = "Grumpy refuses to be read";

/// Serializes only when `ok`; never deserializes.
#[derive(Clone, Debug)]
struct Grumpy {
    ok: bool,
}

impl Serialize for Grumpy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.ok {
            s.serialize_unit()
        } else {
            Err(serde::ser::Error::custom(SER))
        }
    }
}

impl<'de> Deserialize<'de> for Grumpy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d)?;
        Err(serde::de::Error::custom(DE))
    }
}

fn takes(_: (u8, Grumpy)) -> u8 {
    0
}

fn returns(ok: bool) -> (u8, Grumpy) {
    (1, Grumpy { ok })
}

fn error_of<T: Clone + std::fmt::Debug>(f: future::Future<T>) -> String {
    f.result_timeout(std::time::Duration::from_secs(120))
        .expect_err("the codec should have failed")
        .to_string()
}

#[test]
fn a_failing_impl_keeps_its_message_on_all_four_sides() {
    let c = common::clean();
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let sides = [
        (
            "encoding the argument in the parent",
            error_of(pool.submit(takes, (1, Grumpy { ok: false })).unwrap()),
            SER,
        ),
        (
            "decoding the argument in the worker",
            error_of(pool.submit(takes, (1, Grumpy { ok: true })).unwrap()),
            DE,
        ),
        (
            "encoding the result in the worker",
            error_of(pool.submit(returns, false).unwrap()),
            SER,
        ),
        (
            "decoding the result in the parent",
            error_of(pool.submit(returns, true).unwrap()),
            DE,
        ),
    ];
    let lost: Vec<_> = sides
        .iter()
        .filter(|(_, got, want)| !got.contains(want))
        .map(|(side, got, _)| format!("{side}: {got}"))
        .collect();
    assert!(lost.is_empty(), "the impl's message is lost: {lost:#?}");
    drop(pool);
    c.check();
}
