/** The MQTT 3.1.1 codec's public face: packet types, the incremental decoder, the encoder, topics. */
export * from "./packets.js";
export { Decoder, type DecoderOptions } from "./decode.js";
export { encode, remainingLengthBytes, writeRemainingLength } from "./encode.js";
export { isValidTopicFilter, isValidTopicName, topicMatches } from "./topic.js";
