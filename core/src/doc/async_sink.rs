// Shared by the async driver's documentation examples (pulled in with `include!`): a writer
// that keeps what is written, for executors in the examples.
struct Sink(Vec<u8>);

impl aeschat_core::asynch::embedded_io_async::ErrorType for Sink {
    type Error = core::convert::Infallible;
}

impl aeschat_core::asynch::embedded_io_async::Write for Sink {
    async fn write(&mut self, bytes: &[u8]) -> Result<usize, Self::Error> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }
}
