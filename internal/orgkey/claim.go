package orgkey

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// ClaimPrefix starts every claim token, so that a token is recognisable in a URL and a
// secret scanner can find one that leaked.
const ClaimPrefix = "okc1_"

// claimBytes is the token's entropy: 256 bits.
const claimBytes = 32

// ErrMalformedClaim is returned by ParseClaim for anything that is not a claim token.
var ErrMalformedClaim = errors.New("orgkey: not a valid claim token")

// ClaimToken is a one-time credential that lets its holder store the org key in a
// browser. Only its hash is ever stored. It redacts itself like Key.
type ClaimToken struct {
	text string
}

// NewClaimToken draws a token from random (crypto/rand.Reader in production).
func NewClaimToken(random io.Reader) (ClaimToken, error) {
	var buf [claimBytes]byte
	if _, err := io.ReadFull(random, buf[:]); err != nil {
		return ClaimToken{}, fmt.Errorf("orgkey: reading randomness: %w", err)
	}
	return ClaimToken{text: ClaimPrefix + base64.RawURLEncoding.EncodeToString(buf[:])}, nil
}

// ParseClaim checks the shape of a token taken from a URL.
func ParseClaim(s string) (ClaimToken, error) {
	rest, ok := strings.CutPrefix(s, ClaimPrefix)
	if !ok || len(rest) != base64.RawURLEncoding.EncodedLen(claimBytes) {
		return ClaimToken{}, ErrMalformedClaim
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(raw) != claimBytes {
		return ClaimToken{}, ErrMalformedClaim
	}
	return ClaimToken{text: s}, nil
}

// Hash is the token's SHA-256 in hex: what the table stores and looks up.
func (t ClaimToken) Hash() string {
	sum := sha256.Sum256([]byte(t.text))
	return hex.EncodeToString(sum[:])
}

// Reveal returns the token text, for the link in a mail.
func (t ClaimToken) Reveal() string { return t.text }

func (t ClaimToken) String() string               { return "[REDACTED claim token]" }
func (t ClaimToken) GoString() string             { return t.String() }
func (t ClaimToken) LogValue() slog.Value         { return slog.StringValue(t.String()) }
func (t ClaimToken) MarshalText() ([]byte, error) { return []byte(t.String()), nil }
