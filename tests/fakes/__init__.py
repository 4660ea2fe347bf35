"""Test doubles of outside services (Twilio's REST API, ...) served over real HTTP on loopback."""
