-- Test tenant "clinic": medical software that sends prescriptions from each
-- doctor's own address (the re-enveloping case of the deliverability guide).
-- Its password is "clinic-demo", a test credential.
return {
  password_hash = "$2a$10$ll/WNtz880L8siGuObyprOAnqPKGmN8XM0ELAF0HNdZW3EeTcE1A2",
  reenvelope = true,
  bounce_domain = "bounces.clinic.example",
  suppression = "drop",
  classify = {
    -- Prescriptions must reach the patient now.
    { subject = "^ricetta", class = "critical", campaign = "prescriptions" },
  },
}
