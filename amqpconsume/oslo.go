package amqpconsume

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Keys of the oslo.messaging v2 envelope.
const (
	osloVersionKey = "oslo.version"
	osloMessageKey = "oslo.message"
)

// Unwrap returns the notification a message body holds. OpenStack
// services using oslo.messaging publish the v2 envelope
// {"oslo.version": "2.0", "oslo.message": "<the notification as a JSON
// string>"}: Unwrap returns the inner notification. Any other JSON object
// is returned as it is (a plain notification). A body that is not a JSON
// object, or an envelope that does not hold a JSON object, is an error
// saying why.
func Unwrap(body []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if !json.Valid(trimmed) {
			return nil, errors.New("not JSON")
		}
		return nil, fmt.Errorf("not a JSON object but %s", describe(trimmed))
	}
	if !bytes.Contains(trimmed, []byte(`"`+osloVersionKey+`"`)) {
		return body, nil // a plain notification: the distiller checks the rest
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &env); err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	rawVersion, ok := env[osloVersionKey]
	if !ok {
		return body, nil // the key only appeared inside a value
	}
	var version string
	if err := json.Unmarshal(rawVersion, &version); err != nil {
		return nil, fmt.Errorf("oslo envelope: %s must be a string, not %s", osloVersionKey, describe(rawVersion))
	}
	if major, _, _ := strings.Cut(version, "."); major != "2" {
		return nil, fmt.Errorf("oslo envelope: unsupported %s %q (want 2.x)", osloVersionKey, version)
	}
	rawMsg, ok := env[osloMessageKey]
	if !ok {
		return nil, fmt.Errorf("oslo envelope: %s is missing", osloMessageKey)
	}
	var inner string
	if err := json.Unmarshal(rawMsg, &inner); err != nil {
		return nil, fmt.Errorf("oslo envelope: %s must be a JSON string, not %s", osloMessageKey, describe(rawMsg))
	}
	in := bytes.TrimSpace([]byte(inner))
	if !json.Valid(in) {
		return nil, fmt.Errorf("oslo envelope: %s does not hold JSON", osloMessageKey)
	}
	if len(in) == 0 || in[0] != '{' {
		return nil, fmt.Errorf("oslo envelope: %s holds %s, not a notification object", osloMessageKey, describe(in))
	}
	return in, nil
}

// describe names the kind of a JSON value for messages.
func describe(v []byte) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
