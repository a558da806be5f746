// The book's highlighter has no Mojo; Mojo's syntax is Python's where it matters for colour
// (keywords, strings, numbers, comments), so once the page has been highlighted, Mojo
// listings are coloured as Python.
window.addEventListener("load", function () {
  document.querySelectorAll("code.language-mojo").forEach(function (block) {
    // true: ignore what Python would find illegal ([parameters], {captures}) and go on.
    block.innerHTML = hljs.highlight("python", block.textContent, true).value;
    block.classList.add("hljs");
  });
});
