//! Runs one step of the ladder: `cargo run -p learn -- s01`. With no
//! argument (or `--help`), lists the steps.

use std::process::ExitCode;

fn usage() -> String {
    let names: Vec<&str> = learn::STEPS.iter().map(|(name, _)| *name).collect();
    format!(
        "usage: learn <step>, a name or a prefix naming one step, such as s01:\n  {}",
        names.join("\n  ")
    )
}

fn main() -> ExitCode {
    let Some(wanted) = std::env::args().nth(1).filter(|a| a != "-h" && a != "--help") else {
        println!("{}", usage());
        return ExitCode::SUCCESS;
    };
    let matching: Vec<_> =
        learn::STEPS.iter().filter(|(name, _)| name.starts_with(&wanted)).collect();
    match matching[..] {
        [(_, run)] => {
            run();
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("learn: {wanted:?} names {} steps, not one\n{}", matching.len(), usage());
            ExitCode::from(2)
        }
    }
}
