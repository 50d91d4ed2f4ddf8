//! `confcom inspect FILE [--json]`: decode a quote and print its fields.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use sgx_types::quote::Quote;

use crate::input::read_quote_file;
use crate::render::{QuoteJson, quote_text};

#[derive(clap::Args)]
pub struct Args {
    /// Quote file: binary, hex or base64 (detected from the content).
    pub file: PathBuf,
    /// Print a JSON object instead of the readable summary.
    #[arg(long)]
    pub json: bool,
}

/// Exit code for input that cannot be read as a quote at all.
pub const EXIT_BAD_INPUT: u8 = 2;

pub fn run(args: Args) -> Result<ExitCode> {
    let (bytes, encoding) = match read_quote_file(&args.file) {
        Ok(read) => read,
        Err(e) => {
            eprintln!("error: {}", crate::errors::one_line(e.as_ref()));
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    let quote = match Quote::parse(&bytes) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("error: {}: not a valid quote: {e}", args.file.display());
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    let view = QuoteJson::new(&quote);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        println!("{} (read as {})", args.file.display(), encoding.name());
        print!("{}", quote_text(&view, &quote));
    }
    Ok(ExitCode::SUCCESS)
}
