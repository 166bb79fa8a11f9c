//! The byte transport a session runs over, shaped like `embedded-io`: separate blocking
//! halves, so a reader thread and a writer thread can each own one.

/// The receiving half of a byte stream.
///
/// ```
/// struct Bytes<'a>(&'a [u8]);
/// impl aeschat_core::Read for Bytes<'_> {
///     type Error = core::convert::Infallible;
///     fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
///         let n = buf.len().min(self.0.len());
///         buf[..n].copy_from_slice(&self.0[..n]);
///         self.0 = &self.0[n..];
///         Ok(n)
///     }
/// }
/// ```
pub trait Read {
    /// What a failed read reports.
    type Error;

    /// Blocks until at least one byte is available and reads up to `buf.len()` bytes. Returns
    /// `Ok(0)` only at the end of the stream (or for an empty `buf`).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error>;
}

/// The sending half of a byte stream.
///
/// ```
/// struct Sink(usize);
/// impl aeschat_core::Write for Sink {
///     type Error = core::convert::Infallible;
///     fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
///         self.0 += buf.len();
///         Ok(buf.len())
///     }
///     fn flush(&mut self) -> Result<(), Self::Error> {
///         Ok(())
///     }
/// }
/// ```
pub trait Write {
    /// What a failed write reports.
    type Error;

    /// Writes some of `buf` and returns how many bytes were taken (0 means the stream can take
    /// no more).
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error>;

    /// Blocks until everything written has been handed on.
    fn flush(&mut self) -> Result<(), Self::Error>;
}
