"""Live connections: wire schema, fan-out, the ASGI websocket, agent and tracking sockets."""
