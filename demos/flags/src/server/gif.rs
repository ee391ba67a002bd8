//! Generated flags: a small GIF per country code, different for every code,
//! the same in every run, between 1 and 40 KB like the book's real ones.
//!
//! Each image is a simple flag design (bands, a cross, a disc, a canton)
//! drawn in colours picked from the code, plus an "emblem": a block of noise
//! whose area sets the file size. Flat colour compresses to almost nothing
//! under GIF's LZW, noise does not, so the emblem's area spreads the sizes
//! over the real flags' range (1.2 KB for Monaco up to 36 KB for Sri Lanka).
//! The encoding itself is done by the `gif` crate.

use super::rng::Rng;

/// 16 flag-like colours (RGB), the GIF's global palette.
const PALETTE: [[u8; 3]; 16] = [
    [206, 17, 38],   // red
    [255, 255, 255], // white
    [0, 56, 147],    // blue
    [0, 122, 61],    // green
    [252, 209, 22],  // yellow
    [0, 0, 0],       // black
    [255, 130, 0],   // orange
    [117, 170, 219], // light blue
    [128, 0, 32],    // maroon
    [0, 150, 136],   // teal
    [239, 51, 64],   // light red
    [0, 36, 125],    // navy
    [20, 90, 50],    // dark green
    [255, 222, 0],   // gold
    [200, 200, 200], // grey
    [90, 40, 120],   // purple
];

/// About what a flag without an emblem weighs, in bytes.
const FLAT_BYTES: f64 = 700.0;
/// About what each pixel of 8-colour noise adds after LZW, in bytes.
const NOISE_BYTES_PER_PIXEL: f64 = 0.40;

/// The seed of a code's image: its two letters.
fn seed(cc: &str) -> u64 {
    let b = cc.to_ascii_lowercase().into_bytes();
    0xF1A6_0000 ^ ((b[0] as u64) << 8) ^ b[1] as u64
}

/// Draws the flag of `cc` (two ASCII letters) and encodes it as a GIF89a.
pub fn flag_gif(cc: &str) -> Vec<u8> {
    assert!(
        cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_alphabetic()),
        "bad code {cc:?}"
    );
    let mut rng = Rng::new(seed(cc));
    let width = 240 + 8 * rng.below(21) as usize; // 240..=400 px
    let height = width * 2 / 3;
    let colours: Vec<u8> = (0..8)
        .map(|_| rng.below(PALETTE.len() as u64) as u8)
        .collect();
    let design = rng.below(6);
    let mut pixels = vec![0u8; width * height];
    for y in 0..height {
        for x in 0..width {
            pixels[y * width + x] = design_colour(design, &colours, x, y, width, height);
        }
    }
    // The emblem: a centred block of noise in 8 colours, sized for a target
    // file size drawn from 1.2 KB to 36 KB, skewed small (mean about 13 KB,
    // the real flags' mean is 12 KB).
    let u = rng.unit();
    let target = 1_200.0 + 34_800.0 * u * u;
    let area =
        (((target - FLAT_BYTES) / NOISE_BYTES_PER_PIXEL).max(400.0) as usize).min(width * height);
    let ew = ((area as f64 * width as f64 / height as f64).sqrt() as usize).clamp(20, width);
    let eh = (area / ew).clamp(20, height);
    let (x0, y0) = ((width - ew) / 2, (height - eh) / 2);
    for y in y0..y0 + eh {
        for x in x0..x0 + ew {
            pixels[y * width + x] = colours[rng.below(8) as usize];
        }
    }
    encode(width as u16, height as u16, &pixels)
}

/// The palette index of pixel (x, y) for one of six designs.
fn design_colour(design: u64, c: &[u8], x: usize, y: usize, w: usize, h: usize) -> u8 {
    match design {
        0 => c[3 * y / h], // three horizontal bands
        1 => c[3 * x / w], // three vertical bands
        2 => {
            // a Nordic cross
            let in_cross = (x > w / 3 && x < w / 3 + h / 6) || (y > 5 * h / 12 && y < 7 * h / 12);
            if in_cross {
                c[1]
            } else {
                c[0]
            }
        }
        3 => {
            // a disc on a plain field
            let (dx, dy) = (x as i64 - w as i64 / 2, y as i64 - h as i64 / 2);
            let r = h as i64 / 4;
            if dx * dx + dy * dy < r * r {
                c[1]
            } else {
                c[0]
            }
        }
        4 => {
            // a diagonal split
            if x * h > y * w {
                c[0]
            } else {
                c[2]
            }
        }
        _ => {
            // two bands and a canton
            if x < w / 2 && y < h / 2 {
                c[2]
            } else {
                c[y * 2 / h]
            }
        }
    }
}

fn encode(width: u16, height: u16, pixels: &[u8]) -> Vec<u8> {
    let palette: Vec<u8> = PALETTE.iter().flatten().copied().collect();
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, width, height, &palette)
            .expect("writing to a Vec cannot fail");
        let frame = gif::Frame {
            width,
            height,
            buffer: std::borrow::Cow::Borrowed(pixels),
            ..gif::Frame::default()
        };
        encoder
            .write_frame(&frame)
            .expect("writing to a Vec cannot fail");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn flags_are_gifs_distinct_and_of_realistic_size() {
        let mut seen = HashSet::new();
        let mut sizes = Vec::new();
        for cc in crate::codes::all_codes() {
            let gif = flag_gif(&cc);
            assert_eq!(&gif[..6], b"GIF89a", "{cc}");
            assert_eq!(gif.last(), Some(&0x3B), "{cc}: GIF trailer");
            sizes.push(gif.len());
            assert!(seen.insert(gif), "{cc} is not distinct");
        }
        sizes.sort();
        assert!(
            sizes[0] >= 1_000 && sizes[sizes.len() - 1] <= 40_000,
            "{sizes:?}"
        );
        // Spread over the range, like the real flags (1.2 KB to 36 KB).
        assert!(
            sizes[0] < 5_000 && sizes[sizes.len() - 1] > 20_000,
            "{sizes:?}"
        );
    }

    #[test]
    fn same_code_same_bytes_any_case() {
        assert_eq!(flag_gif("br"), flag_gif("BR"));
        assert_ne!(flag_gif("br"), flag_gif("rb"));
    }
}
