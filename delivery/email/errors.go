package email

import (
	"errors"
	"net/textproto"
	"regexp"
	"strings"
)

// Op names the step of a delivery that failed.
type Op string

// Steps of a delivery, in order.
const (
	OpValidate Op = "validate" // checking the Config
	OpCompose  Op = "compose"  // building the message from the Message
	OpDial     Op = "dial"     // opening the TCP connection
	OpTLS      Op = "tls"      // the handshake of implicit TLS
	OpGreeting Op = "greeting" // reading the server's greeting
	OpHello    Op = "hello"    // EHLO, or HELO when EHLO fails
	OpStartTLS Op = "starttls" // STARTTLS and its handshake
	OpAuth     Op = "auth"     // SMTP AUTH
	OpMail     Op = "mail"     // MAIL FROM
	OpRcpt     Op = "rcpt"     // RCPT TO, for every recipient
	OpData     Op = "data"     // DATA, the message and the final reply
)

// Error is a failed delivery. Every error that Send returns is an *Error.
type Error struct {
	// Op is the step that failed.
	Op Op

	// Temporary reports whether a later attempt may succeed: true for 4xx
	// replies and for connection, timeout and TLS errors, false for 5xx
	// replies and for invalid configurations and messages.
	Temporary bool

	// Code is the SMTP reply code, such as 451 or 550, or 0 when the
	// failure was not a reply.
	Code int

	// EnhancedCode is the enhanced status code of the reply (RFC 3463),
	// such as "5.1.1", or "" when the reply had none.
	EnhancedCode string

	// Recipients lists the addresses that the server rejected when Op is
	// OpRcpt.
	Recipients []string

	// Err describes the failure and wraps its cause.
	Err error
}

func (e *Error) Error() string {
	return e.Err.Error()
}

func (e *Error) Unwrap() error {
	return e.Err
}

// permanentError returns an Error that no retry can fix, such as an invalid
// configuration.
func permanentError(op Op, err error) *Error {
	return &Error{Op: op, Err: err}
}

// replyError returns an Error for err, the failure of step op, classified
// by the SMTP reply it carries. A failure without a reply, such as a
// connection, timeout or TLS error, is temporary.
func replyError(op Op, err error) *Error {
	e := &Error{Op: op, Temporary: true, Err: err}
	var reply *textproto.Error
	if errors.As(err, &reply) {
		e.Code = reply.Code
		e.EnhancedCode = enhancedCode(reply.Code, reply.Msg)
		e.Temporary = reply.Code/100 != 5
	}
	return e
}

// enhancedCodePattern matches an enhanced status code at the start of a
// reply text, as servers that announce ENHANCEDSTATUSCODES send it
// (RFC 2034).
var enhancedCodePattern = regexp.MustCompile(`^([245])\.(\d{1,3})\.(\d{1,3})(\s|$)`)

// enhancedCode returns the enhanced status code that starts msg, the text
// of a reply with code, or "" when it has none whose class matches code.
func enhancedCode(code int, msg string) string {
	firstLine, _, _ := strings.Cut(msg, "\n")
	m := enhancedCodePattern.FindStringSubmatch(firstLine)
	if m == nil || m[1][0]-'0' != byte(code/100) {
		return ""
	}
	return m[1] + "." + m[2] + "." + m[3]
}

// errorList is several errors in one line, as for rejected recipients.
type errorList []error

func (l errorList) Error() string {
	parts := make([]string, len(l))
	for i, err := range l {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}

func (l errorList) Unwrap() []error {
	return l
}
