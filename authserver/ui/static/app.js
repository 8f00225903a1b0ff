// authserver pages: conveniences only; every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const status = document.querySelector(".copied");
  // Copy buttons: shown only when JavaScript runs (the fields can be selected by hand too).
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const field = document.getElementById(button.dataset.copy);
    if (!field) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      const label = field.labels && field.labels[0] ? field.labels[0].textContent : "Text";
      try {
        await navigator.clipboard.writeText(field.value);
      } catch (error) {
        field.select();
        document.execCommand("copy");
      }
      if (status) status.textContent = `${label} copied to the clipboard.`;
    });
  }
  // Choosing a date selects the "On a date" expiry.
  for (const input of document.querySelectorAll("input[data-selects]")) {
    input.addEventListener("input", () => {
      const radio = document.getElementById(input.dataset.selects);
      if (radio && input.value) radio.checked = true;
    });
  }
});
