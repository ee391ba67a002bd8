//! Which country codes to ask for: the book's `POP20_CC`, the 194 real codes,
//! every code `AA..ZZ`, and the flags2 rule that turns command-line arguments
//! into a sorted, de-duplicated, limited list (`expand_cc_args` in
//! `flags2_common.py`).

use std::collections::BTreeSet;
use std::fmt;

/// The 20 most populous countries, in order of decreasing population, as the
/// book lists them. Every program sorts them before use.
pub const POP20_CC: [&str; 20] = [
    "CN", "IN", "US", "ID", "BR", "PK", "NG", "BD", "RU", "JP", "MX", "PH", "VN", "ET", "EG", "DE",
    "IR", "TR", "CD", "FR",
];

/// The book's `country_codes.txt`: the 194 codes that have a flag, `AD` to `ZW`.
/// Kept here as text so that the programs never need a data file.
const COUNTRY_CODES_TXT: &str = "\
AD AE AF AG AL AM AO AR AT AU AZ BA BB BD BE BF BG BH BI BJ BN BO BR BS BT
BW BY BZ CA CD CF CG CH CI CL CM CN CO CR CU CV CY CZ DE DJ DK DM DZ EC EE
EG ER ES ET FI FJ FM FR GA GB GD GE GH GM GN GQ GR GT GW GY HN HR HT HU ID
IE IL IN IQ IR IS IT JM JO JP KE KG KH KI KM KN KP KR KW KZ LA LB LC LI LK
LR LS LT LU LV LY MA MC MD ME MG MH MK ML MM MN MR MT MU MV MW MX MY MZ NA
NE NG NI NL NO NP NR NZ OM PA PE PG PH PK PL PT PW PY QA RO RS RU RW SA SB
SC SD SE SG SI SK SL SM SN SO SR SS ST SV SY SZ TD TG TH TJ TL TM TN TO TR
TT TV TW TZ UA UG US UY UZ VA VC VE VN VU WS YE ZA ZM ZW";

/// The 194 codes that have a flag (`-a`), sorted.
pub fn all_codes() -> Vec<String> {
    COUNTRY_CODES_TXT
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Whether `cc` (upper or lower case) is one of the 194 codes with a flag.
pub fn has_flag(cc: &str) -> bool {
    let upper = cc.to_ascii_uppercase();
    COUNTRY_CODES_TXT.split_whitespace().any(|c| c == upper)
}

/// Every possible two-letter code, `AA` to `ZZ` (`-e`): 676 codes, of which
/// 194 have a flag and 482 get a 404.
pub fn every_code() -> Vec<String> {
    let mut codes = Vec::with_capacity(26 * 26);
    for a in b'A'..=b'Z' {
        for b in b'A'..=b'Z' {
            codes.push(String::from_utf8(vec![a, b]).expect("ASCII letters"));
        }
    }
    codes
}

/// The codes of the default run: `POP20_CC`, sorted.
pub fn pop20_sorted() -> Vec<String> {
    let mut codes: Vec<String> = POP20_CC.iter().map(|s| s.to_string()).collect();
    codes.sort();
    codes
}

/// A positional argument that is neither a letter nor a two-letter code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CcArgError {
    /// The offending argument, as typed.
    pub arg: String,
}

impl fmt::Display for CcArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "each CC argument must be A to Z or AA to ZZ (got {:?})",
            self.arg
        )
    }
}

impl std::error::Error for CcArgError {}

/// The book's `expand_cc_args`: `-e` wins over `-a`, which wins over the
/// positional arguments; a one-letter argument stands for the 26 codes that
/// start with it; the result is sorted, de-duplicated and cut to `limit`.
/// With nothing selected, the answer is the sorted `POP20_CC` (cut to `limit`,
/// as the 2e does).
pub fn expand_cc_args(
    every: bool,
    all: bool,
    cc_args: &[String],
    limit: usize,
) -> Result<Vec<String>, CcArgError> {
    let mut codes = BTreeSet::new();
    if every {
        codes.extend(every_code());
    } else if all {
        codes.extend(all_codes());
    } else {
        for arg in cc_args {
            let upper = arg.to_ascii_uppercase();
            let letters_ok = upper.bytes().all(|b| b.is_ascii_uppercase());
            match upper.len() {
                1 if letters_ok => {
                    for b in b'A'..=b'Z' {
                        codes.insert(format!("{upper}{}", b as char));
                    }
                }
                2 if letters_ok => {
                    codes.insert(upper);
                }
                _ => return Err(CcArgError { arg: arg.clone() }),
            }
        }
    }
    let mut list: Vec<String> = if codes.is_empty() {
        pop20_sorted()
    } else {
        codes.into_iter().collect()
    };
    list.truncate(limit);
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lists_have_the_book_sizes() {
        assert_eq!(all_codes().len(), 194);
        assert_eq!(every_code().len(), 676);
        assert_eq!(all_codes().first().map(String::as_str), Some("AD"));
        assert_eq!(all_codes().last().map(String::as_str), Some("ZW"));
        let mut sorted = all_codes();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, all_codes(), "the list is sorted and unique");
        assert!(POP20_CC.iter().all(|cc| has_flag(cc)));
        assert!(!has_flag("XX"));
    }

    #[test]
    fn letters_expand_to_26_codes_each() {
        let codes = expand_cc_args(false, false, &args(&["a", "B", "c"]), usize::MAX).unwrap();
        assert_eq!(codes.len(), 78);
        assert_eq!(codes.first().unwrap(), "AA");
        assert_eq!(codes.last().unwrap(), "CZ");
        let found = codes.iter().filter(|cc| has_flag(cc)).count();
        assert_eq!(
            (found, codes.len() - found),
            (43, 35),
            "the book's a b c counts"
        );
    }

    #[test]
    fn every_wins_then_all_then_limit() {
        assert_eq!(
            expand_cc_args(true, true, &[], usize::MAX).unwrap().len(),
            676
        );
        let first100 = expand_cc_args(false, true, &args(&["zz"]), 100).unwrap();
        assert_eq!(first100.len(), 100);
        assert_eq!((first100[0].as_str(), first100[99].as_str()), ("AD", "LK"));
    }

    #[test]
    fn duplicates_collapse_and_default_is_pop20() {
        let codes = expand_cc_args(false, false, &args(&["br", "BR", "b"]), usize::MAX).unwrap();
        assert_eq!(codes.len(), 26);
        assert_eq!(
            expand_cc_args(false, false, &[], usize::MAX).unwrap(),
            pop20_sorted()
        );
        assert_eq!(
            expand_cc_args(false, false, &[], 3).unwrap(),
            ["BD", "BR", "CD"]
        );
    }

    #[test]
    fn bad_arguments_are_refused() {
        for bad in ["abc", "1", "", "é", "a1"] {
            let err = expand_cc_args(false, false, &args(&[bad]), usize::MAX).unwrap_err();
            assert_eq!(err.arg, bad);
        }
    }
}
