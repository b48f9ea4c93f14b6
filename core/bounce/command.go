package bounce

import "strings"

// commands maps phrases that bounces use to say which SMTP command failed
// to the command.
var commands = []struct{ phrase, command string }{
	{"in reply to rcpt to command", "RCPT TO"},
	{"after rcpt", "RCPT TO"},
	{"our rcpt to", "RCPT TO"},
	{"[rcpt_to]", "RCPT TO"},
	{">>> rcpt to", "RCPT TO"},
	{"smtp:rcpt", "RCPT TO"},
	{"smtp command rcpt", "RCPT TO"},
	{"does not like recipient", "RCPT TO"},
	{"in reply to mail from command", "MAIL FROM"},
	{"after mail from", "MAIL FROM"},
	{"our mail from", "MAIL FROM"},
	{"[mail_from]", "MAIL FROM"},
	{">>> mail from", "MAIL FROM"},
	{"smtp command mail", "MAIL FROM"},
	{"sender was rejected", "MAIL FROM"},
	{"in reply to end of data command", "end of DATA"},
	{"in reply to data command", "DATA"},
	{"after end of data", "end of DATA"},
	{"after data", "DATA"},
	{"our final data", "end of DATA"},
	{"failed after i sent the message", "end of DATA"},
	{"failed on data command", "DATA"},
	{"for text command", "end of DATA"},
	{"smtp command data", "DATA"},
	{">>> data", "DATA"},
	{"[data]", "DATA"},
	{"after initial connection", "CONNECT"},
	{"but greeting failed", "CONNECT"},
	{"in reply to ehlo command", "EHLO"},
	{"in reply to helo command", "HELO"},
	{"after ehlo", "EHLO"},
	{"after helo", "HELO"},
	{"my name was rejected", "HELO"},
	{"in reply to starttls command", "STARTTLS"},
	{"after starttls", "STARTTLS"},
}

// commandOf returns the SMTP command a diagnostic says failed, or "".
func commandOf(text string) string {
	lower := strings.ToLower(text)
	for _, c := range commands {
		if strings.Contains(lower, c.phrase) {
			return c.command
		}
	}
	return ""
}

// commandPhrase returns a canonical "in reply to X command" phrase for the
// command a text names, or "".
func commandPhrase(text string) string {
	if c := commandOf(text); c != "" {
		return "in reply to " + c + " command"
	}
	return ""
}
