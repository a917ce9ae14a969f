//! Splitting a generated verifier into contracts that each fit EIP-170's 24 KiB code limit.
//!
//! snark-verifier emits one straight-line Yul body: read the proof from calldata, run the
//! transcript, evaluate the quotient, build the MSM, check the pairing, all through memory
//! at literal addresses. The body can therefore be cut at any top-level statement after the
//! last `calldataload`: the state at the cut is exactly memory `[0, high-water)`. Part `i`
//! returns that memory, part `i + 1` starts by copying its calldata back to address 0, and
//! a wrapper contract (`Halo2Verifier`, same calldata and result as the unsplit verifier)
//! chains the parts with `staticcall`s to fixed addresses set at deployment. Each part
//! reverts as soon as a check has failed, so the wrapper succeeds only if every part does.

use regex::Regex;

use crate::error::{Error, Result};

/// The wrapper's contract name (the same name as the unsplit verifier).
pub const WRAPPER: &str = "Halo2Verifier";

/// Contract name of part `i`.
pub fn part_name(i: usize) -> String {
    format!("Halo2VerifierPart{i}")
}

/// The generated verifier, cut into its sections.
struct Sections<'a> {
    /// The Solidity memory-layout check at the start of the assembly block.
    layout_check: Vec<&'a str>,
    /// `let success`, the field moduli and the helper functions: repeated in every part.
    preamble: Vec<&'a str>,
    /// The straight-line body.
    body: Vec<&'a str>,
    /// The final success check and return.
    tail: Vec<&'a str>,
}

fn malformed(why: &str) -> Error {
    Error::Codegen(format!("cannot split the generated verifier: {why}"))
}

fn braces(line: &str) -> i64 {
    line.chars().map(|c| i64::from(c == '{') - i64::from(c == '}')).sum()
}

fn sections(source: &str) -> Result<Sections<'_>> {
    let lines: Vec<&str> = source.lines().collect();
    let find = |from: usize, pat: &str| lines[from..].iter().position(|l| l.contains(pat)).map(|p| p + from);
    let asm = find(0, "assembly (\"memory-safe\") {").ok_or_else(|| malformed("no assembly block"))?;
    let success = find(asm, "let success := true").ok_or_else(|| malformed("no success flag"))?;
    let tail = find(success, "// Revert if anything fails").ok_or_else(|| malformed("no final check"))?;
    // The preamble runs until the first line at depth 0 that is neither a `let` of the
    // moduli nor part of a function definition.
    let mut end = success;
    let mut depth = 0i64;
    while end < tail {
        let t = lines[end].trim();
        let starts_item =
            t.starts_with("let success") || t.starts_with("let f_p") || t.starts_with("let f_q") || t.starts_with("function ");
        if depth == 0 && !starts_item && !t.is_empty() {
            break;
        }
        depth += braces(lines[end]);
        end += 1;
    }
    Ok(Sections {
        layout_check: lines[asm + 1..success].to_vec(),
        preamble: lines[success..end].to_vec(),
        body: lines[end..tail].to_vec(),
        tail: lines[tail..].to_vec(),
    })
}

fn literal(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// For each body line, the memory high-water mark after it (bytes, rounded to a word).
fn high_water(body: &[&str]) -> Result<Vec<u64>> {
    let store = Regex::new(r"mstore8?\(([^,()]+),").map_err(|e| malformed(&e.to_string()))?;
    let any_store = Regex::new(r"mstore8?\(").map_err(|e| malformed(&e.to_string()))?;
    let call =
        Regex::new(r"staticcall\(gas\(\),\s*[^,]+,\s*[^,]+,\s*[^,]+,\s*([^,]+),\s*([^,()]+)\)").map_err(|e| malformed(&e.to_string()))?;
    let mut hw = 0u64;
    let mut out = Vec::with_capacity(body.len());
    for line in body {
        let stores: Vec<_> = store.captures_iter(line).collect();
        if any_store.find_iter(line).count() != stores.len() || line.contains("calldatacopy") || line.contains("returndatacopy") {
            return Err(malformed(&format!("a memory write at a computed address: `{}`", line.trim())));
        }
        for c in stores {
            hw = hw.max(literal(&c[1]).ok_or_else(|| malformed(line))? + 32);
        }
        for c in call.captures_iter(line) {
            hw = hw.max(literal(&c[1]).ok_or_else(|| malformed(line))? + literal(&c[2]).ok_or_else(|| malformed(line))?);
        }
        out.push(hw.div_ceil(32) * 32);
    }
    Ok(out)
}

/// Body line indices where a part may end: at depth 0, after the last `calldataload`.
fn cut_points(body: &[&str]) -> Vec<usize> {
    let last_calldata = body.iter().rposition(|l| l.contains("calldataload")).map_or(0, |i| i + 1);
    let mut depth = 0i64;
    let mut cuts = Vec::new();
    for (i, line) in body.iter().enumerate() {
        depth += braces(line);
        if depth == 0 && i + 1 >= last_calldata && i + 1 < body.len() {
            cuts.push(i + 1);
        }
    }
    cuts
}

/// Splits `source` (the unsplit verifier) into `parts` part contracts and the wrapper, in one
/// Solidity source. Parts are balanced by source length.
/// Cuts `source` into `parts` contracts and a wrapper. `part_hashes` are the parts' runtime
/// code hashes, which the wrapper's constructor requires of the addresses it is given; without
/// them (the first pass, to compile the parts and learn their hashes) it checks only that
/// each address holds code.
pub fn split_source(source: &str, parts: usize, part_hashes: Option<&[[u8; 32]]>) -> Result<String> {
    if part_hashes.is_some_and(|h| h.len() != parts) {
        return Err(malformed(&format!("{parts} parts, {} code hashes", part_hashes.map_or(0, <[_]>::len))));
    }
    let s = sections(source)?;
    let mut depth = 0i64;
    for line in &s.body {
        // A variable declared at the top level would not survive a cut (snark-verifier scopes its `let`s in blocks).
        if depth == 0 && line.trim_start().starts_with("let ") {
            return Err(malformed(&format!("a top-level variable: `{}`", line.trim())));
        }
        depth += braces(line);
    }
    let hw = high_water(&s.body)?;
    let cuts = cut_points(&s.body);
    let mut prefix = vec![0usize];
    for line in &s.body {
        prefix.push(prefix[prefix.len() - 1] + line.len());
    }
    let total = prefix[s.body.len()];
    let mut ends: Vec<usize> = Vec::new();
    for k in 1..parts {
        let target = total * k / parts;
        let after = ends.last().copied().unwrap_or(0);
        let best = cuts.iter().copied().filter(|&c| c > after).min_by_key(|&c| prefix[c].abs_diff(target));
        ends.push(best.ok_or_else(|| malformed(&format!("not enough cut points for {parts} parts")))?);
    }
    ends.push(s.body.len());
    let mut out = String::from("// SPDX-License-Identifier: MIT\n\npragma solidity 0.8.19;\n");
    let mut start = 0;
    for (i, &end) in ends.iter().enumerate() {
        let last = i + 1 == ends.len();
        out.push_str(&format!("\n/// Part {} of {parts} of the verifier (see `{WRAPPER}`).\ncontract {} {{\n", i + 1, part_name(i)));
        out.push_str("    fallback(bytes calldata) external returns (bytes memory) {\n        assembly (\"memory-safe\") {\n");
        if i == 0 {
            s.layout_check.iter().for_each(|l| push_line(&mut out, l));
        } else {
            out.push_str("            // The previous part's memory, word for word.\n            calldatacopy(0, 0, calldatasize())\n");
        }
        s.preamble.iter().chain(&s.body[start..end]).for_each(|l| push_line(&mut out, l));
        if last {
            s.tail.iter().for_each(|l| push_line(&mut out, l));
        } else {
            let mark = hw[end - 1];
            out.push_str(&format!(
                "            if iszero(success) {{ revert(0, 0) }}\n            return(0, {mark:#x})\n        }}\n    }}\n}}\n"
            ));
        }
        start = end;
    }
    out.push_str(&wrapper(parts, part_hashes));
    Ok(out)
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line);
    out.push('\n');
}

/// The wrapper: the unsplit verifier's interface, chaining the parts. Its constructor pins
/// each part by runtime code hash (or, without hashes, requires code), so that it cannot be
/// deployed over an address without code (whose `staticcall` succeeds and would pass any
/// proof) or over another contract.
fn wrapper(parts: usize, part_hashes: Option<&[[u8; 32]]>) -> String {
    let fields: String = (0..parts).map(|i| format!("    address private immutable part{i};\n")).collect();
    let params: Vec<String> = (0..parts).map(|i| format!("address p{i}")).collect();
    let assigns: String = (0..parts)
        .map(|i| {
            let check = match part_hashes {
                Some(h) => format!("p{i}.codehash == bytes32(0x{})", hex::encode(h[i])),
                None => format!("p{i}.code.length > 0"),
            };
            format!("        require({check}, \"part {i}: not the verifier's code\");\n        part{i} = p{i};\n")
        })
        .collect();
    let locals: String = (0..parts).map(|i| format!("        address a{i} = part{i};\n")).collect();
    let calls: String = (0..parts)
        .map(|i| {
            let next = if i + 1 < parts { "\n            size := returndatasize()\n            returndatacopy(0, 0, size)" } else { "" };
            format!("            if iszero(staticcall(gas(), a{i}, 0, size, 0, 0)) {{ revert(0, 0) }}{next}\n")
        })
        .collect();
    format!(
        "\n/// The verifier: takes `instances ‖ proof` as raw calldata, returns nothing when the proof\n\
         /// is valid and reverts otherwise. It runs the {parts} parts in order, each on the memory the\n\
         /// previous one left (EIP-170 limits each contract to 24 KiB of code).\n\
         contract {WRAPPER} {{\n{fields}\n    constructor({}) {{\n{assigns}    }}\n\n\
         \x20   fallback(bytes calldata) external returns (bytes memory) {{\n{locals}        assembly {{\n\
         \x20           calldatacopy(0, 0, calldatasize())\n            let size := calldatasize()\n{calls}            return(0, 0)\n        }}\n    }}\n}}\n",
        params.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOY: &str = r#"// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;
contract Halo2Verifier {
    fallback(bytes calldata) external returns (bytes memory) {
        assembly ("memory-safe") {
            let data := mload(0x40)
            if iszero(eq(data, 0x80)) {
                revert(0, 0)
            }
            let success := true
            let f_p := 0x11
            let f_q := 0x13
            function validate_ec_point(x, y) -> valid {
                valid := 1
            }
            mstore(0xa0, mod(calldataload(0x0), f_q))
        {
            let x := calldataload(0x20)
            mstore(0xc0, x)
        }
mstore(0x100, mulmod(mload(0xa0), mload(0xc0), f_q))
mstore(256, addmod(mload(0x100), 1, f_q))
success := and(eq(staticcall(gas(), 0x8, 0x100, 0x180, 0x300, 0x20), 1), success)
mstore(0x120, mload(0x300))

            // Revert if anything fails
            if iszero(success) { revert(0, 0) }

            // Return empty bytes on success
            return(0, 0)
        }
    }
}
"#;

    #[test]
    fn sections_and_high_water() {
        let s = sections(TOY).unwrap();
        assert_eq!(s.layout_check.len(), 4);
        assert_eq!(s.preamble.len(), 6);
        assert!(s.body[0].contains("calldataload(0x0)"));
        assert_eq!(high_water(&s.body).unwrap().last(), Some(&0x320));
        // Cuts only after the last calldataload, at depth 0.
        assert_eq!(cut_points(&s.body), vec![5, 6, 7, 8, 9]);
    }

    #[test]
    fn split_keeps_every_body_line_once_and_chains_memory() {
        let out = split_source(TOY, 2, None).unwrap();
        for line in sections(TOY).unwrap().body.iter().filter(|l| l.contains("mstore") || l.contains("success :=")) {
            assert_eq!(out.matches(line).count(), 1, "{line}");
        }
        assert!(out.contains("contract Halo2VerifierPart0") && out.contains("contract Halo2VerifierPart1"));
        assert!(out.contains("calldatacopy(0, 0, calldatasize())"));
        assert!(out.contains("constructor(address p0, address p1)"));
        // The early part returns its whole memory and stops on a failed check.
        assert!(out.contains("if iszero(success) { revert(0, 0) }\n            return(0, 0x"));
    }

    #[test]
    fn a_computed_store_address_refuses_to_split() {
        let bad = TOY.replace("mstore(0x120, mload(0x300))", "mstore(add(0x120, 1), mload(0x300))");
        assert!(split_source(&bad, 2, None).is_err());
    }
}
