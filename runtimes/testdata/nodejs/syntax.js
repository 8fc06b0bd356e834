// A deliberate syntax error.
exports.handler = () => {
