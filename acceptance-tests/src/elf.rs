//! What the release tests need to know of an ELF binary, read from its bytes: its machine,
//! and whether it needs a program interpreter or shared libraries to run.

/// `EM_X86_64` and `EM_AARCH64`.
pub const X86_64: u16 = 62;
pub const AARCH64: u16 = 183;

#[derive(Debug, PartialEq, Eq)]
pub struct Facts {
    pub machine: u16,
    /// A `PT_INTERP` program header, or a `DT_NEEDED` entry in the dynamic section: the
    /// binary cannot run without the system's loader and libraries.
    pub needs_loader: bool,
}

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NEEDED: u64 = 1;

/// Facts of a 64-bit little-endian ELF file; panics on anything else.
pub fn facts(bin: &[u8]) -> Facts {
    assert_eq!(
        bin.get(..6),
        Some(&b"\x7fELF\x02\x01"[..]),
        "not a 64-bit little-endian ELF file"
    );
    let u16_at = |at: usize| u16::from_le_bytes(bin[at..at + 2].try_into().unwrap());
    let u32_at = |at: usize| u32::from_le_bytes(bin[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(bin[at..at + 8].try_into().unwrap());
    let phoff = u64_at(32) as usize;
    let (phentsize, phnum) = (u16_at(54) as usize, u16_at(56) as usize);
    let mut needs_loader = false;
    for ph in (0..phnum).map(|i| phoff + i * phentsize) {
        match u32_at(ph) {
            PT_INTERP => needs_loader = true,
            // A static-pie has a dynamic section (for its own relocations), but no
            // DT_NEEDED in it.
            PT_DYNAMIC => {
                let (off, size) = (u64_at(ph + 8) as usize, u64_at(ph + 32) as usize);
                needs_loader |= (off..off + size)
                    .step_by(16)
                    .any(|entry| u64_at(entry) == DT_NEEDED);
            }
            _ => {}
        }
    }
    Facts {
        machine: u16_at(18),
        needs_loader,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_arch = "x86_64", target_env = "gnu"))]
    fn this_test_binary_is_dynamic_x86_64() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let facts = facts(&me);
        assert_eq!(facts.machine, X86_64);
        assert!(facts.needs_loader, "a glibc test binary needs ld.so");
    }

    #[test]
    #[should_panic(expected = "not a 64-bit little-endian ELF file")]
    fn a_script_is_not_elf() {
        facts(b"#!/bin/sh\nexit 0\n");
    }
}
