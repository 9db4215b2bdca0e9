// Pages give every time in UTC (<time datetime="ISO">2026-12-10 23:30 UTC</time>), the same for
// the whole class and in the audit log; this adds the viewer's own time beside it when their
// zone is another, so nobody converts in their head. Without JavaScript the UTC time stands alone.
"use strict";

function twoDigits(number) {
  return String(number).padStart(2, "0");
}

// "2026-12-11 00:30 GMT+1": the moment in the viewer's zone, as precise as the UTC text.
function localText(moment, seconds) {
  const zone = new Intl.DateTimeFormat([], { timeZoneName: "short" })
    .formatToParts(moment).find((part) => part.type === "timeZoneName");
  const date = `${moment.getFullYear()}-${twoDigits(moment.getMonth() + 1)}-${twoDigits(moment.getDate())}`;
  let time = `${twoDigits(moment.getHours())}:${twoDigits(moment.getMinutes())}`;
  if (seconds) {
    time += `:${twoDigits(moment.getSeconds())}`;
  }
  return `${date} ${time}${zone ? " " + zone.value : ""}`;
}

document.addEventListener("DOMContentLoaded", () => {
  for (const element of document.querySelectorAll("time[datetime]")) {
    const moment = new Date(element.dateTime);
    if (Number.isNaN(moment.getTime()) || moment.getTimezoneOffset() === 0) {
      continue;
    }
    const local = document.createElement("span");
    local.className = "local-time";
    const seconds = element.textContent.split(":").length > 2;
    local.textContent = ` (${localText(moment, seconds)} your time)`;
    element.after(local);
  }
});
