"""The notifier: webhooks and e-mails a workflow's `notifications` ask for, on its runs' events."""
