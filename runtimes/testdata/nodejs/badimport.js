require('nimbus-no-such-module');

exports.handler = () => 1;
