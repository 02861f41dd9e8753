/*
 * portcullis/sdk/mqtt: the SDK's ECMA-419 MQTT client and the TCP, UDP and DNS resolver under it, re-exported
 * under one name whose typings (mqtt.d.ts) we own. Their sources are SDK examples
 * (examples/io/tcp/mqttclient; examples/io/udp/dns), included by our manifest.
 */
export { default as MQTTClient } from "embedded:network/mqtt/client";
export { default as TCP } from "embedded:io/socket/tcp";
export { default as UDP } from "embedded:io/socket/udp";
export { default as Resolver } from "embedded:network/dns/resolver/udp";
