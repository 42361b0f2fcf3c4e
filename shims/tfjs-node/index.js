// Shim for danfojs-node: re-export the pure-JS @tensorflow/tfjs (see package.json).
module.exports = require('@tensorflow/tfjs');
