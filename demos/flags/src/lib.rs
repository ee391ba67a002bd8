//! The flag downloaders and their flag server (work in progress).
